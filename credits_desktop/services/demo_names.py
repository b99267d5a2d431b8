"""Word lists and the generators of realistic customer names and owner emails for the demo.

Names are built from a few small lists so that thousands of accounts look varied while the
same random stream always gives the same names. Some names carry accents and other
non-ASCII letters ("Café Nørd", "Zürich Bloom GmbH") because real customers' do and the
search must cope; emails are plain ASCII, derived from a person's name and the company's
domain, and unique across the data set.
"""

from __future__ import annotations

import random
import unicodedata

__all__ = ["NameMaker"]

FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Lucas", "Mia", "Ethan", "Sofia", "Mateo",
    "Chloé", "Jonas", "Zoë", "Søren", "Aisha", "Kenji", "Priya", "Diego", "Ingrid", "Tomás",
    "Fatima", "Björn", "Amara", "Ravi", "Elena", "Hugo", "Nadia", "Omar", "Leila", "Felix",
    "Hana", "Marco", "Yuki", "Camille", "Ibrahim", "Grace", "Andrés", "Freya", "Kwame", "Lena",
    "José", "Ayşe", "Nikolai", "Maeve", "Chen", "Anaïs", "Tariq", "Selin", "Rafael", "Imogen",
)

LAST_NAMES = (
    "Smith", "Johnson", "García", "Müller", "Rossi", "Nguyen", "Kowalski", "Larsen", "Silva",
    "Dubois", "Tanaka", "Patel", "O'Brien", "Haddad", "Novak", "Fischer", "Jensen", "Moreau",
    "Okafor", "Lindqvist", "Kim", "Costa", "Schmidt", "Ivanova", "Mendes", "Hughes", "Yilmaz",
    "Andersson", "Nakamura", "Reyes", "Brennan", "Sato", "Weber", "Ortiz", "Mensah", "Chowdhury",
    "Peeters", "Eriksen", "Bianchi", "Walsh",
)

ADJECTIVES = (
    "Bright", "Bold", "Blue", "Clever", "Golden", "Green", "Happy", "Honest", "Little", "Lucky",
    "Modern", "Nordic", "North", "Open", "Peak", "Prime", "Quiet", "Rapid", "Red", "Silver",
    "Simple", "Smart", "Solid", "Sunny", "Swift", "True", "Urban", "Vivid", "Wild", "Young",
    "Café", "Côte", "Zürich", "São Paulo", "Málaga", "Öresund", "Kraków", "Ōsaka", "Reykjavík",
    "Montréal",
)

NOUNS = (
    "Harbor", "Pixel", "Oak", "Fox", "Lantern", "Maple", "Orbit", "Pepper", "River", "Summit",
    "Anchor", "Bloom", "Cedar", "Compass", "Falcon", "Forge", "Grove", "Hive", "Juniper", "Kettle",
    "Meadow", "Nest", "Otter", "Pine", "Quill", "Raven", "Sparrow", "Thistle", "Willow", "Zephyr",
    "Nørd", "Fjörd", "Crème", "Señal", "Brücke", "Étoile", "Ørsted", "Jardín", "Kaffe", "Lumière",
)

TRADES = (
    "Media", "Studio", "Labs", "Digital", "Creative", "Marketing", "Agency", "Brands", "Goods",
    "Co.", "Collective", "Commerce", "Outfitters", "Apparel", "Coffee", "Cosmetics", "Fitness",
    "Home", "Pets", "Travel", "Supply", "Works", "GmbH", "AB", "SAS", "Ltd", "Inc.", "S.L.",
)

DOMAIN_ENDINGS = (".com", ".com", ".com", ".co", ".io", ".de", ".fr", ".se", ".es", ".co.uk",
                  ".net", ".shop")

# Letters NFKD does not split into a base letter and an accent.
_TRANSLIT = str.maketrans({
    "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss", "đ": "d", "ł": "l", "Ł": "L",
    "ı": "i", "œ": "oe", "Œ": "OE", "þ": "th", "ð": "d",
})


def ascii_slug(text: str) -> str:
    """Lower-case ASCII letters and digits only: "Café Nørd" -> "cafenord"."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLIT))
    return "".join(c for c in decomposed.lower() if c.isascii() and c.isalnum())


class NameMaker:
    """Makes company names and unique owner emails from one random stream per account."""

    def __init__(self) -> None:
        self._emails: set[str] = set()

    def company(self, rng: random.Random) -> str:
        """A company name in one of a few common shapes."""
        shape = rng.random()
        if shape < 0.45:
            return f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(TRADES)}"
        if shape < 0.65:
            return f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
        if shape < 0.80:
            return f"{rng.choice(LAST_NAMES)} & {rng.choice(LAST_NAMES)} {rng.choice(TRADES)}"
        if shape < 0.92:
            return f"{rng.choice(NOUNS)} & {rng.choice(NOUNS)}"
        return f"{rng.choice(NOUNS)}{rng.choice(('ly', 'ify', 'io', 'hub', 'box'))}"

    def email(self, rng: random.Random, company: str) -> str:
        """An owner email at the company's domain, never handed out twice."""
        first = ascii_slug(rng.choice(FIRST_NAMES))
        last = ascii_slug(rng.choice(LAST_NAMES))
        style = rng.random()
        if style < 0.5:
            local = f"{first}.{last}"
        elif style < 0.7:
            local = f"{first[0]}{last}"
        elif style < 0.85:
            local = first
        else:
            local = rng.choice(("hello", "marketing", "ads", "team", "growth", "billing"))
        words = company.split()
        base = ascii_slug("".join(w for w in words if w not in TRADES and w != "&")) or "shop"
        domain = f"{base[:24]}{rng.choice(DOMAIN_ENDINGS)}"
        email = f"{local}@{domain}"
        counter = 1
        while email in self._emails:
            counter += 1
            email = f"{local}{counter}@{domain}"
        self._emails.add(email)
        return email
