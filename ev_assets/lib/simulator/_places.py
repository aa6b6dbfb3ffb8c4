"""Hard-coded geography and naming for the simulated fleet: the 38 chargecloud cities and German POI brands.

Centres, postal codes, operators, hotlines and EVSE operator codes follow what the real chargecloud recordings
show for each city, so simulated data looks like the real feed (and joins to real OSM extracts by location).
"""

from __future__ import annotations

from dataclasses import dataclass

from ev_assets.lib.settings import CHARGECLOUD_CITIES


@dataclass(frozen=True)
class City:
    slug: str
    name: str
    lat: float
    lon: float
    radius_km: float  # stations scatter within this distance of the centre
    busyness: float  # demand multiplier: big cities see more EVs per charging point
    postal_code: str  # a real postal code of the centre; others are derived from it
    state: str
    operators: tuple[str, ...]  # operator names as the feed spells them; the first one dominates
    hotline: str
    evse_code: str  # the operator part of EVSE ids, DE*<code>*E...
    name_prefix: str  # how the operator prefixes station names, '' for none
    ocm_operator_id: int | None  # Open Charge Map OperatorID; None: OCM does not know the operator


_NRW, _BW, _BY = "Nordrhein-Westfalen", "Baden-Württemberg", "Bayern"
_LVP_HOTLINE = "+498002340001"
_TANKE_HOTLINE = "+498004393030"
# Deliberately absent from the simulated OCM reference data (the real reference data misses newer IDs too).
UNKNOWN_OCM_OPERATOR_ID = 3534

_CITY_ROWS = [
    # slug, name, lat, lon, radius, busyness, postcode, state, operators, hotline, evse code, prefix, OCM operator
    ("koeln", "Köln", 50.9375, 6.9603, 7.0, 1.25, "50667", _NRW,
     ("RheinEnergie AG", "Rheinenergie AG", "Rheinenergie"), "+4922134645600", "REK", "LIS-K", 72),
    ("dortmund", "Dortmund", 51.5136, 7.4653, 7.0, 1.15, "44135", _NRW,
     ("Dortmunder Energie- und Wasserversorgung", "DEW21 GmbH"), "+4923170097799", "DEW", "Lichtmast_",
     UNKNOWN_OCM_OPERATOR_ID),
    ("bonn", "Bonn", 50.7374, 7.0982, 5.0, 1.15, "53111", _NRW,
     ("Energie- und Wasserversorgung Bonn/Rhein-Sieg GmbH",), _TANKE_HOTLINE, "OPE", "", 69),
    ("muenster", "Münster", 51.9607, 7.6261, 5.0, 1.1, "48143", _NRW,
     ("Stadtwerke Münster GmbH",), "+492516946944", "MS1", "", 225),
    ("kiel", "Kiel", 54.3233, 10.1228, 5.0, 1.05, "24103", "Schleswig-Holstein",
     ("Stadtwerke Kiel AG",), _TANKE_HOTLINE, "KIE", "Kiel_", 69),
    ("chemnitz", "Chemnitz", 50.8278, 12.9214, 5.0, 0.95, "09111", "Sachsen",
     ("eins energie in sachsen GmbH & Co. KG",), "+49800111148910", "EIN", "", 2243),
    ("krefeld", "Krefeld", 51.3388, 6.5853, 4.0, 1.0, "47798", _NRW,
     ("SWK ENERGIE GmbH",), _TANKE_HOTLINE, "NRW", "SWK ENERGIE", 69),
    ("leverkusen", "Leverkusen", 51.0459, 7.0192, 4.0, 1.0, "51373", _NRW,
     ("EVL",), _TANKE_HOTLINE, "EVL", "", 69),
    ("heidelberg", "Heidelberg", 49.3988, 8.6724, 4.0, 1.1, "69115", _BW,
     ("Stadtwerke Heidelberg Energie GmbH",), "+4962215131313", "1HD", "", 69),
    ("solingen", "Solingen", 51.1652, 7.0671, 4.0, 0.95, "42651", _NRW,
     ("Stadtwerke Solingen GmbH",), "+492122952900", "SOL", "Stadtwerke Solingen -", 69),
    ("ingolstadt", "Ingolstadt", 48.7665, 11.4258, 4.0, 1.05, "85049", _BY,
     ("SWI",), "+49841804222", "333", "", None),
    ("pforzheim", "Pforzheim", 48.8922, 8.6946, 3.5, 1.0, "75172", _BW,
     ("SWP Stadtwerke Pforzheim GmbH&Co.KG",), "+49723139713244", "SPF", "SPF -", 86),
    ("goettingen", "Göttingen", 51.5413, 9.9158, 3.5, 1.05, "37073", "Niedersachsen",
     ("Stadtwerke Göttingen AG", "Stadtwerke Göttingen Ag"), "+49551301333", "GOE", "", 132),
    ("erlangen", "Erlangen", 49.5897, 11.0078, 3.5, 1.05, "91052", _BY,
     ("Erlanger Stadtwerke AG",), _LVP_HOTLINE, "LVP", "", 234),
    ("tuebingen", "Tübingen", 48.5216, 9.0576, 3.0, 1.05, "72070", _BW,
     ("Stadtwerke Tübingen GmbH",), "+497071157111", "TUE", "swt -", 86),
    ("bayreuth", "Bayreuth", 49.9456, 11.5713, 3.0, 0.95, "95444", _BY,
     ("Stadtwerke Bayreuth Energie und Wasser GmbH",), _LVP_HOTLINE, "LVP", "", 234),
    ("bocholt", "Bocholt", 51.8389, 6.6163, 3.0, 0.9, "46395", _NRW,
     ("Bocholter Energie- und Wasserversorgung GmbH",), "+4928719540", "BOH", "", 69),
    ("dormagen", "Dormagen", 51.0964, 6.8400, 3.0, 0.85, "41539", _NRW,
     ("energieversorgung dormagen gmbh", "evd energieversorgung dormagen gmbh"), _TANKE_HOTLINE, "EVD", "", 69),
    ("rastatt", "Rastatt", 48.8574, 8.2033, 2.5, 0.85, "76437", _BW,
     ("Stadtwerke Rastatt GmbH",), "+497222773333", "SRA", "", 86),
    ("hof", "Hof", 50.3135, 11.9128, 2.5, 0.8, "95028", _BY,
     ("HEW HofEnergie+Wasser GmbH",), _LVP_HOTLINE, "LVP", "", 234),
    ("weinheim", "Weinheim", 49.5450, 8.6730, 2.5, 0.85, "69469", _BW,
     ("Stadtwerke Weinheim GmbH",), "+496201106150", "674", "", 86),
    ("bruchsal", "Bruchsal", 49.1247, 8.5980, 3.0, 0.85, "76646", _BW,
     ("Stadtwerke Bruchsal", "Stadtwerke Bruchsal "), "+497251706400", "EWB", "", UNKNOWN_OCM_OPERATOR_ID),
    ("nettetal", "Nettetal", 51.3167, 6.2833, 2.5, 0.75, "41334", _NRW,
     ("Stadtwerke Nettetal GmbH",), _TANKE_HOTLINE, "NET", "", 69),
    ("ansbach", "Ansbach", 49.3003, 10.5719, 2.5, 0.8, "91522", _BY,
     ("Stadtwerke Ansbach GmbH",), _LVP_HOTLINE, "LVP", "Ansbach -", 234),
    ("schwabach", "Schwabach", 49.3292, 11.0236, 2.5, 0.8, "91126", _BY,
     ("Stadtwerke Schwabach GmbH",), "08002340001", "LVP", "", 234),
    ("ettlingen", "Ettlingen", 48.9411, 8.4075, 2.5, 0.85, "76275", _BW,
     ("Stadtwerke Ettlingen GmbH",), "+49724310102", "ETT", "Ettlingen,", 86),
    ("crailsheim", "Crailsheim", 49.1347, 10.0706, 2.0, 0.75, "74564", _BW,
     ("Stadtwerke Crailsheim",), _LVP_HOTLINE, "LVP", "Crailsheim -", 86),
    ("deggendorf", "Deggendorf", 48.8406, 12.9608, 2.0, 0.75, "94469", _BY,
     ("Stadtwerke Deggendorf GmbH",), _LVP_HOTLINE, "LVP", "", 234),
    ("forchheim", "Forchheim", 49.7197, 11.0581, 2.0, 0.8, "91301", _BY,
     ("Stadtwerke Forchheim",), _LVP_HOTLINE, "LVP", "Forchheim -", 234),
    ("bretten", "Bretten", 49.0364, 8.7061, 2.0, 0.75, "75015", _BW,
     ("Stadtwerke Bretten GmbH",), "+4972529130", "KEB", "", 86),
    ("buehl", "Bühl", 48.6953, 8.1350, 2.0, 0.75, "77815", _BW,
     ("Stadtwerke Bühl GmbH", "Stadtwerke Bühl"), "+497223946399", "SBH", "", 86),
    ("zirndorf", "Zirndorf", 49.4425, 10.9544, 2.0, 0.75, "90513", _BY,
     ("Stadtwerke Zirndorf GmbH",), _LVP_HOTLINE, "LVP", "", 234),
    ("roth", "Roth", 49.2461, 11.0911, 2.0, 0.75, "91154", _BY,
     ("Stadtwerke Roth",), _LVP_HOTLINE, "LVP", "", 234),
    ("calw", "Calw", 48.7144, 8.7400, 3.0, 0.8, "75365", _BW,
     ("deer GmbH", "SW Fellbach / deer GmbH"), "+4970511300432", "753", "Calw", None),
    ("herzogenaurach", "Herzogenaurach", 49.5678, 10.8856, 2.0, 0.85, "91074", _BY,
     ("Herzo Werke GmbH",), _LVP_HOTLINE, "LVP", "", 234),
    ("wertheim", "Wertheim", 49.7589, 9.5175, 2.0, 0.75, "97877", _BW,
     ("Stadtwerke Wertheim",), _LVP_HOTLINE, "LVP", "Wertheim -", 86),
    ("kitzingen", "Kitzingen", 49.7373, 10.1582, 2.0, 0.75, "97318", _BY,
     ("Licht-, Kraft- und Wasserwerke Kitzingen GmbH",), _LVP_HOTLINE, "LVP", "", 234),
    ("lichtenfels", "Lichtenfels", 50.1450, 11.0594, 2.0, 0.75, "96215", _BY,
     ("Stadtwerke Lichtenfels",), _LVP_HOTLINE, "LVP", "", 234),
]

CITIES: dict[str, City] = {row[0]: City(*row) for row in _CITY_ROWS}
assert tuple(CITIES) == CHARGECLOUD_CITIES, "the simulator must know exactly the chargecloud city slugs"


def city(slug: str) -> City:
    """The city of a slug, or a ValueError that lists the slugs the simulator knows."""
    try:
        return CITIES[slug]
    except KeyError:
        raise ValueError(f"unknown city slug {slug!r}; the simulator knows: {', '.join(CITIES)}") from None


def city_index(slug: str) -> int:
    return CHARGECLOUD_CITIES.index(slug)


STREETS = (
    "Hauptstraße", "Bahnhofstraße", "Schulstraße", "Gartenstraße", "Kirchstraße", "Bergstraße", "Lindenstraße",
    "Ringstraße", "Goethestraße", "Schillerstraße", "Friedrich-Ebert-Straße", "Wilhelmstraße", "Poststraße",
    "Industriestraße", "Parkstraße", "Kaiserstraße", "Luisenstraße", "Mühlenweg", "Am Markt", "Marktplatz",
    "Rathausplatz", "Waldstraße", "Talstraße", "Kantstraße", "Mozartstraße", "Beethovenstraße", "Jahnstraße",
    "Am Bahnhof", "Uhlandstraße", "Hindenburgstraße", "Bismarckstraße", "Kölner Straße", "Feldstraße",
    "Sportplatzweg", "Friedhofstraße", "Lessingstraße", "Gewerbestraße", "Rosenstraße", "Eichendorffstraße",
    "Am Stadtpark", "Carl-Benz-Straße", "Robert-Bosch-Straße", "Max-Planck-Straße", "Theaterplatz",
)

# OSM tag (key, value) -> names/brands that appear on such features in Germany.
POI_NAMES: dict[tuple[str, str], tuple[str, ...]] = {
    ("shop", "supermarket"): ("REWE", "EDEKA", "ALDI SÜD", "ALDI Nord", "Lidl", "Kaufland", "Netto Marken-Discount",
                              "PENNY", "Norma", "tegut"),
    ("shop", "mall"): ("{city} Arcaden", "City-Galerie {city}", "Einkaufszentrum {city}", "{city} Center"),
    ("shop", "doityourself"): ("OBI", "Hornbach", "toom Baumarkt", "BAUHAUS", "hagebaumarkt"),
    ("shop", "hardware"): ("Eisenwaren {street}", "Werkzeug Schmitt", "Haushaltswaren Müller"),
    ("amenity", "fast_food"): ("McDonald's", "Burger King", "Subway", "KFC", "Istanbul Döner", "Pizza Hut",
                               "Nordsee", "Imbiss am Markt"),
    ("amenity", "cafe"): ("Café Extrablatt", "Bäckerei Café", "Tchibo", "Starbucks", "Eiscafé Venezia",
                          "Café am Markt", "Kamps"),
    ("amenity", "restaurant"): ("Ristorante Da Mario", "Gasthaus zur Post", "Brauhaus", "Athen Grill",
                                "Asia Wok", "Zum Goldenen Hirsch", "Vapiano", "L'Osteria"),
    ("amenity", "fuel"): ("Aral", "Shell", "Esso", "TotalEnergies", "JET", "Avia", "Agip"),
    ("amenity", "parking"): ("Parkhaus {street}", "P+R {city}", "Parkplatz {street}", None, None),
    ("amenity", "charging_station"): ("EnBW", "Tesla Supercharger", "IONITY", "Allego", "EWE Go"),
    ("highway", "services"): ("Raststätte {city}", "Autohof {city}", "Rastanlage {city}-Nord"),
}

# Brand names also carry a `brand` tag in OSM; generic names do not.
BRANDED = {
    "REWE", "EDEKA", "ALDI SÜD", "ALDI Nord", "Lidl", "Kaufland", "Netto Marken-Discount", "PENNY", "Norma",
    "tegut", "OBI", "Hornbach", "toom Baumarkt", "BAUHAUS", "hagebaumarkt", "McDonald's", "Burger King",
    "Subway", "KFC", "Pizza Hut", "Nordsee", "Tchibo", "Starbucks", "Vapiano", "L'Osteria", "Aral", "Shell",
    "Esso", "TotalEnergies", "JET", "Avia", "Agip", "Kamps", "IONITY", "Tesla Supercharger", "EnBW", "Allego",
}
