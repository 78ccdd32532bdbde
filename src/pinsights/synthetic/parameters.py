"""The numbers of the synthetic platform's behavioural model: who the users are, what they like,
how advertisers and pins are spread, how often people engage, and when.

Shares are relative weights (normalised where used); multipliers default to 1.0. Changing one
changes the generated data (the same seed gives the same bytes only for the same numbers).
"""

from __future__ import annotations

#: The contract's devices, in the order the device shares below are listed.
DEVICES = ("iphone", "android_mobile", "web", "ipad", "web_mobile", "android_tablet")

EVENTS_PER_USER = 50
"""Default event volume: events per user over the whole window."""

PINS_PER_USER = 2
"""Content volume: enough pins per user for popular pins to stand out from a long tail."""


AGE_SHARES = (0.17, 0.28, 0.22, 0.09, 0.08, 0.10, 0.06)
GENDER_SHARES = (0.68, 0.25, 0.07)
DEVICE_SHARES_US = (0.42, 0.22, 0.16, 0.07, 0.08, 0.05)
DEVICE_SHARES_ELSEWHERE = (0.20, 0.45, 0.17, 0.04, 0.10, 0.04)
DEVICE_ACTIVITY = (1.3, 1.3, 0.8, 1.0, 0.7, 1.0)
"""App users come back more often than web users."""

# Reported values go missing at these rates (the latent value still drives behaviour).
NULL_RATE = {"age": 0.03, "gender": 0.02, "country": 0.02, "metro": 0.04, "device": 0.02}
LOWERCASE_COUNTRY_RATE = 0.03
"""The contract allows any case for country codes; some upstream systems send lower case."""

CATEGORY_POPULARITY = {
    "animals": 3.0,
    "architecture": 2.0,
    "art": 5.0,
    "beauty": 8.0,
    "childrens_fashion": 2.0,
    "design": 4.0,
    "diy_and_crafts": 7.0,
    "education": 2.5,
    "electronics": 2.0,
    "entertainment": 4.0,
    "event_planning": 3.0,
    "finance": 1.5,
    "food_and_drinks": 12.0,
    "gardening": 4.0,
    "health": 5.0,
    "home_decor": 12.0,
    "mens_fashion": 2.5,
    "parenting": 3.0,
    "quotes": 4.0,
    "sport": 2.5,
    "travel": 5.0,
    "vehicles": 1.5,
    "wedding": 4.0,
    "womens_fashion": 10.0,
}

GENDER_AFFINITY: dict[str, dict[str, float]] = {
    "female": {
        "womens_fashion": 1.6,
        "beauty": 1.6,
        "wedding": 1.5,
        "childrens_fashion": 1.4,
        "home_decor": 1.3,
        "diy_and_crafts": 1.3,
        "parenting": 1.3,
        "event_planning": 1.3,
        "food_and_drinks": 1.1,
        "mens_fashion": 0.3,
        "vehicles": 0.3,
        "electronics": 0.5,
        "sport": 0.6,
        "finance": 0.7,
    },
    "male": {
        "mens_fashion": 4.0,
        "vehicles": 4.0,
        "electronics": 3.0,
        "sport": 3.0,
        "finance": 2.0,
        "architecture": 1.6,
        "entertainment": 1.4,
        "womens_fashion": 0.15,
        "beauty": 0.3,
        "wedding": 0.4,
        "childrens_fashion": 0.5,
        "parenting": 0.6,
        "diy_and_crafts": 0.7,
    },
    "unspecified": {},
}

AGE_AFFINITY: dict[str, dict[str, float]] = {
    "18-24": {
        "quotes": 2.0,
        "education": 1.6,
        "entertainment": 1.5,
        "beauty": 1.4,
        "art": 1.3,
        "womens_fashion": 1.3,
        "parenting": 0.3,
        "childrens_fashion": 0.3,
        "finance": 0.6,
        "gardening": 0.4,
    },
    "25-34": {
        "wedding": 2.0,
        "childrens_fashion": 1.7,
        "parenting": 1.6,
        "event_planning": 1.4,
        "home_decor": 1.2,
        "finance": 1.2,
    },
    "35-44": {
        "parenting": 1.6,
        "childrens_fashion": 1.6,
        "home_decor": 1.3,
        "health": 1.2,
        "diy_and_crafts": 1.2,
        "wedding": 0.7,
    },
    "45-49": {
        "gardening": 1.4,
        "home_decor": 1.3,
        "health": 1.3,
        "finance": 1.3,
        "travel": 1.2,
        "quotes": 0.8,
        "wedding": 0.5,
    },
    "50-54": {
        "gardening": 1.6,
        "health": 1.4,
        "travel": 1.3,
        "home_decor": 1.3,
        "diy_and_crafts": 1.3,
        "beauty": 0.8,
        "quotes": 0.7,
        "parenting": 0.6,
        "wedding": 0.4,
    },
    "55-64": {
        "gardening": 2.0,
        "health": 1.5,
        "travel": 1.4,
        "diy_and_crafts": 1.4,
        "education": 0.6,
        "childrens_fashion": 0.6,
        "quotes": 0.7,
        "parenting": 0.4,
        "wedding": 0.3,
    },
    "65+": {
        "gardening": 2.2,
        "diy_and_crafts": 1.5,
        "health": 1.5,
        "animals": 1.3,
        "travel": 1.3,
        "womens_fashion": 0.7,
        "electronics": 0.5,
        "wedding": 0.3,
        "parenting": 0.2,
    },
}

FAVOURITE_COUNT_SHARES = (0.35, 0.40, 0.25)
"""How many favourite categories a user has: 2, 3 or 4."""
FAVOURITE_STRENGTH = (0.45, 0.28, 0.17, 0.10)
"""How a user's attention is split between their first, second, … favourite category."""
USER_ACTIVITY_EXPONENT = 1.0
USER_ACTIVITY_OFFSET = 0.001
"""User activity is Zipf-Mandelbrot, ``(rank + offset * users) ** -exponent``: a long tail of
occasional users and heavy users who are heavy, not bots (the offset caps the head)."""

ADVERTISER_POPULARITY = {
    "animals": 3.0,
    "architecture": 1.0,
    "art": 2.0,
    "beauty": 9.0,
    "childrens_fashion": 3.0,
    "design": 2.0,
    "diy_and_crafts": 5.0,
    "education": 2.0,
    "electronics": 4.0,
    "entertainment": 4.0,
    "event_planning": 3.0,
    "finance": 3.0,
    "food_and_drinks": 10.0,
    "gardening": 3.0,
    "health": 5.0,
    "home_decor": 10.0,
    "mens_fashion": 4.0,
    "parenting": 4.0,
    "quotes": 1.0,
    "sport": 3.0,
    "travel": 5.0,
    "vehicles": 3.0,
    "wedding": 4.0,
    "womens_fashion": 10.0,
}
RELATED_CATEGORIES: dict[str, tuple[str, ...]] = {
    "animals": ("home_decor", "parenting"),
    "architecture": ("design", "home_decor"),
    "art": ("design", "diy_and_crafts"),
    "beauty": ("womens_fashion", "health"),
    "childrens_fashion": ("parenting", "event_planning"),
    "design": ("home_decor", "art"),
    "diy_and_crafts": ("home_decor", "art", "event_planning"),
    "education": ("parenting", "quotes"),
    "electronics": ("entertainment", "design"),
    "entertainment": ("electronics", "quotes"),
    "event_planning": ("food_and_drinks", "wedding"),
    "finance": ("education", "travel"),
    "food_and_drinks": ("health", "event_planning"),
    "gardening": ("home_decor", "diy_and_crafts"),
    "health": ("food_and_drinks", "sport"),
    "home_decor": ("design", "diy_and_crafts", "gardening"),
    "mens_fashion": ("sport", "beauty"),
    "parenting": ("childrens_fashion", "education"),
    "quotes": ("art", "education"),
    "sport": ("health", "mens_fashion"),
    "travel": ("vehicles", "entertainment"),
    "vehicles": ("travel", "sport"),
    "wedding": ("event_planning", "womens_fashion"),
    "womens_fashion": ("beauty", "wedding"),
}
RELATED_CATEGORY_AFFINITY = 2.5
"""How much likelier a related category is among the tastes of someone whose first love is X."""
SECOND_FOCUS_RATE = 0.4
ADVERTISER_SIZE_EXPONENT = 1.1
ADVERTISER_PIN_SHARE = 0.25
ADVERTISER_ON_FOCUS = 0.85
"""Share of an advertiser's pins in its focus categories; the rest is anything."""
PROMOTED_BOOST = 1.5
"""Advertisers' pins are seen more often than organic ones (they are promoted)."""

NULL_INTEREST_RATE = 0.03
VIDEO_PIN_RATE = 0.15
PIN_POPULARITY_TAIL = 1.3
"""Pareto shape of pin popularity: most pins are rarely seen, a few go viral."""

WIDER_INTERESTS = 6
"""A user's favourite categories plus the next ones in their taste ranking: what they may engage
with when the feed shows it, without seeking it out."""
INTEREST_DRIVEN_RATE = 0.5
"""Share of events on pins from the user's favourite categories; the rest is feed exploration."""
ENGAGEMENT_RATE = (0.002, 0.04, 0.42)
"""Probability that an event is an engagement: exploration outside the user's wider interests,
exploration within them, interest-driven. Heavy users see everything, so engagement outside a
user's interests must be rare or every heavy user ends up interested in every category."""
ENGAGEMENT_MIX = {
    "CLOSEUP": 0.36,
    "SAVE": 0.22,
    "PIN_CLICK": 0.16,
    "OUTBOUND_CLICK": 0.10,
    "VIDEO_VIEW": 0.10,
    "COMMENT": 0.02,
    "REACTION": 0.04,
}
VIDEO_VIEW_BOOST = 3.5
ADVERTISER_OUTBOUND_BOOST = 2.0
"""Advertisers' pins link to their websites, so they get more outbound clicks."""

WEEKDAY_VOLUME = (0.97, 0.96, 0.96, 0.97, 0.95, 1.04, 1.15)
"""Monday … Sunday: people plan on weekends."""
DAILY_GROWTH = 0.002
DAILY_NOISE = 0.03
LOCAL_HOUR_VOLUME = (
    *(1.2, 0.7, 0.45, 0.35, 0.35, 0.5, 1.0, 1.9, 2.6, 2.9, 3.1, 3.4),
    *(3.8, 3.7, 3.5, 3.5, 3.7, 4.0, 4.6, 5.3, 5.9, 5.9, 4.7, 2.8),
)
"""Activity by local hour: a lunchtime bump and an evening peak."""

ACCOUNT_NAME_PREFIXES = (
    *("Blue Harbor", "North Pine", "Golden Oak", "Little River", "Urban", "Wild Meadow"),
    *("Silver Birch", "Red Barn", "Cedar & Stone", "Maple Lane", "Sunset", "Coastal"),
    *("Evergreen", "Hearth", "Juniper", "Willow", "Bright", "Copper", "Ivory", "Summit"),
    *("Magnolia", "Prairie", "Aurora", "Lark", "Fern", "Olive", "Sage", "Honey", "Velvet"),
    *("Marigold", "Atlas", "Northwind", "Riverstone", "Bluebird", "Orchard", "Canyon"),
    *("Linen", "Everly", "Brookside", "Harbor"),
)
ACCOUNT_NAME_NOUNS: dict[str, tuple[str, ...]] = {
    "animals": ("Paws", "Pet Supply", "Tails", "Kibble Co.", "Pet Care", "Critters"),
    "architecture": ("Architects", "Design Build", "Builders", "Homes", "Timber Frames", "Atelier"),
    "art": ("Art Supply", "Canvas", "Gallery", "Paint Co.", "Art Studio", "Prints"),
    "beauty": ("Beauty", "Cosmetics", "Skincare", "Salon", "Glow", "Lash Co."),
    "childrens_fashion": ("Kids", "Little Ones", "Baby Boutique", "Tots", "Kidswear", "Mini"),
    "design": ("Design Co.", "Studio", "Creative", "Type Foundry", "Design Lab", "Graphics"),
    "diy_and_crafts": ("Crafts", "Yarn Co.", "Fabrics", "Maker Supply", "Craft House", "Paper"),
    "education": ("Learning", "Academy", "Tutors", "Classroom", "Books", "Study Co."),
    "electronics": ("Electronics", "Tech", "Audio", "Gadgets", "Devices", "Labs"),
    "entertainment": ("Pictures", "Records", "Games", "Studios", "Streaming", "Media"),
    "event_planning": (
        "Party Supply",
        "Events",
        "Celebrations",
        "Balloons",
        "Party Co.",
        "Invites",
    ),
    "finance": ("Bank", "Credit Union", "Wealth", "Capital", "Finance", "Insurance"),
    "food_and_drinks": ("Kitchen", "Bakery", "Foods", "Coffee Roasters", "Pantry", "Brewing Co."),
    "gardening": ("Garden Center", "Nursery", "Seed Co.", "Greenhouse", "Plant Co.", "Landscapes"),
    "health": ("Wellness", "Fitness", "Nutrition", "Vitamins", "Health", "Yoga"),
    "home_decor": ("Home", "Furniture", "Interiors", "Living", "Rugs", "Decor"),
    "mens_fashion": ("Menswear", "Outfitters", "Tailors", "Denim Co.", "Supply Co.", "Clothiers"),
    "parenting": ("Baby", "Parenting", "Family", "Nursery Co.", "Maternity", "Kids Club"),
    "quotes": ("Prints", "Stationery", "Letterpress", "Greetings", "Paper Co.", "Posters"),
    "sport": ("Sports", "Athletics", "Outdoors", "Gear", "Running Co.", "Golf"),
    "travel": ("Travel", "Tours", "Resorts", "Hotels", "Getaways", "Adventures"),
    "vehicles": ("Motors", "Auto", "Cycles", "Automotive", "Tire Co.", "RV"),
    "wedding": ("Bridal", "Weddings", "Bride", "Rings", "Wedding Co.", "Florals"),
    "womens_fashion": ("Boutique", "Apparel", "Collective", "Jewelry", "Shoes", "Swim"),
}

# Id spaces that look like Pinterest's and never overlap each other.
USER_ID_BASE = 549_755_813_888
AD_ACCOUNT_ID_BASE = 549_000_000_000
PIN_ID_BASE = 1_060_000_000_000_000_000
