"""The interest taxonomy of the synthetic platform.

Pinterest classifies content under 24 level-1 interests (the *categories* of an audience insight)
with deeper interests beneath them. The generator needs a taxonomy that looks like that one so that
insight documents read like real ones: readable names, a few hundred subcategories, some interests
three levels deep. Interest ids are derived from the interest's path, not from the seed, so every
generated dataset shares the same ids and a category keeps its id across datasets.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from pinsights.synthetic.sampling import FloatArray

#: The 24 level-1 interests (categories): Pinterest's key and its display name.
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("animals", "Animals"),
    ("architecture", "Architecture"),
    ("art", "Art"),
    ("beauty", "Beauty"),
    ("childrens_fashion", "Children's fashion"),
    ("design", "Design"),
    ("diy_and_crafts", "DIY and crafts"),
    ("education", "Education"),
    ("electronics", "Electronics"),
    ("entertainment", "Entertainment"),
    ("event_planning", "Event planning"),
    ("finance", "Finance"),
    ("food_and_drinks", "Food and drinks"),
    ("gardening", "Gardening"),
    ("health", "Health"),
    ("home_decor", "Home decor"),
    ("mens_fashion", "Men's fashion"),
    ("parenting", "Parenting"),
    ("quotes", "Quotes"),
    ("sport", "Sport"),
    ("travel", "Travel"),
    ("vehicles", "Vehicles"),
    ("wedding", "Wedding"),
    ("womens_fashion", "Women's fashion"),
)

CATEGORY_KEYS: tuple[str, ...] = tuple(key for key, _ in CATEGORIES)

# category key -> level-2 name -> level-3 names (empty: the level-2 interest is a leaf)
_TREE: dict[str, dict[str, tuple[str, ...]]] = {
    "animals": {
        "Dogs": ("Puppies", "Dog training", "Dog breeds", "Dog treats"),
        "Cats": ("Kittens", "Cat care", "Funny cats"),
        "Horses": (),
        "Birds": (),
        "Aquariums": (),
        "Reptiles": (),
        "Wildlife": (),
        "Farm animals": (),
        "Pet care": (),
        "Pet accessories": (),
    },
    "architecture": {
        "Modern architecture": (),
        "Houses": ("Tiny houses", "Farmhouses", "Cabins", "Mid-century modern homes"),
        "Interior architecture": (),
        "Landscape architecture": (),
        "Historic architecture": (),
        "Sustainable architecture": (),
        "Architecture sketches": (),
        "Bridges": (),
        "Skyscrapers": (),
        "Architectural details": (),
    },
    "art": {
        "Painting": ("Watercolor", "Acrylic painting", "Oil painting"),
        "Drawing": ("Pencil drawing", "Sketchbook ideas", "Portrait drawing"),
        "Photography": ("Portrait photography", "Landscape photography", "Photography tips"),
        "Digital art": (),
        "Street art": (),
        "Sculpture": (),
        "Illustration": (),
        "Art journaling": (),
        "Calligraphy": (),
        "Tattoo art": (),
    },
    "beauty": {
        "Makeup": ("Eye makeup", "Natural makeup", "Lipstick", "Makeup tutorials"),
        "Hair": ("Hairstyles", "Hair color", "Curly hair", "Braids", "Short hair"),
        "Skin care": ("Skin care routine", "Anti-aging", "Acne care"),
        "Nails": ("Nail art", "Gel nails", "Summer nails"),
        "Fragrance": (),
        "Beauty tips": (),
        "Natural beauty": (),
        "Eyebrows": (),
    },
    "childrens_fashion": {
        "Baby clothes": ("Newborn outfits", "Baby girl outfits", "Baby boy outfits"),
        "Toddler outfits": (),
        "Girls' fashion": (),
        "Boys' fashion": (),
        "Kids' shoes": (),
        "Kids' costumes": (),
        "School uniforms": (),
        "Kids' accessories": (),
        "Teen fashion": (),
    },
    "design": {
        "Graphic design": ("Logo design", "Typography", "Poster design", "Branding"),
        "Interior design": (),
        "Web design": (),
        "UX design": (),
        "Fashion design": (),
        "Product design": (),
        "Packaging design": (),
        "Color palettes": (),
        "Pattern design": (),
        "Furniture design": (),
    },
    "diy_and_crafts": {
        "Sewing": ("Sewing patterns", "Quilting", "Embroidery"),
        "Crochet": ("Crochet patterns", "Amigurumi"),
        "Paper crafts": ("Origami", "Scrapbooking", "Card making"),
        "Woodworking": ("Woodworking projects", "Pallet projects"),
        "Knitting": (),
        "Kids' crafts": (),
        "Home DIY projects": (),
        "Upcycling": (),
        "Candle making": (),
        "Jewelry making": (),
        "Resin art": (),
    },
    "education": {
        "Teaching": ("Classroom ideas", "Lesson plans", "Classroom decor"),
        "Homeschool": (),
        "Learning activities": (),
        "Preschool activities": (),
        "Study tips": (),
        "Science": (),
        "Math": (),
        "Languages": (),
        "History": (),
        "Reading": (),
        "College life": (),
    },
    "electronics": {
        "Smartphones": (),
        "Laptops": (),
        "Gaming setups": (),
        "Headphones": (),
        "Cameras": (),
        "Smart home": (),
        "Wearables": (),
        "Tech gadgets": (),
        "Home office setups": (),
        "Audio equipment": (),
        "Computer accessories": (),
    },
    "entertainment": {
        "Movies": ("Movie posters", "Movie quotes"),
        "Music": ("Concerts", "Playlists"),
        "Books": ("Book recommendations", "Book aesthetics"),
        "TV shows": (),
        "Video games": (),
        "Anime": (),
        "Celebrities": (),
        "Comics": (),
        "Memes": (),
        "Theater": (),
    },
    "event_planning": {
        "Birthday party ideas": ("Kids' birthday parties", "Birthday cakes"),
        "Holiday parties": ("Christmas party ideas", "Halloween party ideas", "Thanksgiving ideas"),
        "Party decorations": (),
        "Baby shower": (),
        "Bridal shower": (),
        "Graduation party": (),
        "Party food": (),
        "Party games": (),
        "Gift ideas": (),
        "Themed parties": (),
    },
    "finance": {
        "Budgeting": ("Budget planners", "Saving money tips"),
        "Investing": (),
        "Personal finance": (),
        "Debt payoff": (),
        "Side hustles": (),
        "Retirement planning": (),
        "Real estate investing": (),
        "Financial planning": (),
        "Credit scores": (),
        "Money saving challenges": (),
    },
    "food_and_drinks": {
        "Desserts": ("Cakes", "Cookies", "Cheesecake", "Brownies"),
        "Dinner recipes": ("Chicken recipes", "Pasta recipes", "Soup recipes", "Casseroles"),
        "Healthy recipes": ("Low carb recipes", "Meal prep", "Smoothies"),
        "Baking": ("Bread", "Sourdough", "Pastries"),
        "Drinks": ("Cocktails", "Coffee", "Mocktails", "Wine"),
        "Vegan recipes": (),
        "Breakfast recipes": (),
        "Snacks": (),
        "Salads": (),
        "Appetizers": (),
        "Vegetarian recipes": (),
        "Slow cooker recipes": (),
    },
    "gardening": {
        "Vegetable gardening": ("Tomatoes", "Raised beds", "Herb gardens"),
        "Flower gardening": ("Roses", "Perennials", "Hydrangeas"),
        "Indoor plants": ("Succulents", "Houseplant care"),
        "Garden design": (),
        "Landscaping": (),
        "Container gardening": (),
        "Composting": (),
        "Backyard ideas": (),
        "Garden decor": (),
        "Fruit trees": (),
    },
    "health": {
        "Fitness": ("Workouts", "Yoga", "Pilates", "Running"),
        "Mental health": ("Self-care", "Mindfulness", "Meditation"),
        "Nutrition": (),
        "Weight loss": (),
        "Sleep": (),
        "Women's health": (),
        "Healthy habits": (),
        "Natural remedies": (),
        "Pregnancy health": (),
        "Stretching": (),
    },
    "home_decor": {
        "Living room decor": ("Living room ideas", "Cozy living rooms"),
        "Bedroom decor": ("Bedroom ideas", "Master bedroom"),
        "Kitchen decor": ("Kitchen ideas", "Kitchen organization"),
        "Home organization": ("Closet organization", "Pantry organization"),
        "Holiday decor": ("Christmas decor", "Fall decor"),
        "Bathroom decor": (),
        "Farmhouse decor": (),
        "Boho decor": (),
        "Minimalist decor": (),
        "Wall decor": (),
        "Outdoor living": (),
        "Apartment decor": (),
    },
    "mens_fashion": {
        "Men's outfits": ("Casual men's outfits", "Men's street style", "Business casual men"),
        "Men's accessories": ("Watches", "Men's bags"),
        "Men's grooming": ("Beards", "Men's haircuts"),
        "Men's shoes": (),
        "Suits": (),
        "Men's workwear": (),
        "Men's athletic wear": (),
        "Men's jackets": (),
        "Men's style tips": (),
    },
    "parenting": {
        "Baby care": ("Baby names", "Baby sleep", "Breastfeeding"),
        "Pregnancy": ("Pregnancy tips", "Maternity photos"),
        "Toddlers": ("Toddler activities", "Potty training"),
        "Kids' activities": (),
        "Family activities": (),
        "Parenting tips": (),
        "Nursery ideas": (),
        "School lunches": (),
        "Positive parenting": (),
        "Family photos": (),
    },
    "quotes": {
        "Inspirational quotes": (),
        "Love quotes": (),
        "Funny quotes": (),
        "Motivational quotes": (),
        "Life quotes": (),
        "Friendship quotes": (),
        "Bible verses": (),
        "Positive affirmations": (),
        "Quotes about strength": (),
        "Song lyrics": (),
    },
    "sport": {
        "Camping": ("Camping gear", "Camping hacks"),
        "Football": (),
        "Basketball": (),
        "Soccer": (),
        "Baseball": (),
        "Golf": (),
        "Tennis": (),
        "Cycling": (),
        "Hiking": (),
        "Fishing": (),
        "Hunting": (),
        "Skiing and snowboarding": (),
        "Surfing": (),
        "Martial arts": (),
        "Volleyball": (),
    },
    "travel": {
        "Destinations": (
            "Europe travel",
            "Beach destinations",
            "National parks",
            "City breaks",
            "Asia travel",
        ),
        "Travel tips": ("Packing lists", "Budget travel"),
        "Road trips": (),
        "Hotels and resorts": (),
        "Travel photography": (),
        "Family travel": (),
        "Solo travel": (),
        "Honeymoon destinations": (),
        "Adventure travel": (),
        "Travel itineraries": (),
        "Cruises": (),
    },
    "vehicles": {
        "Cars": ("Classic cars", "Sports cars", "Electric cars", "Car interiors"),
        "RVs and campers": ("Van life", "Camper renovation"),
        "Trucks": (),
        "Motorcycles": (),
        "Off-road vehicles": (),
        "Car care": (),
        "Car accessories": (),
        "Boats": (),
        "Aviation": (),
    },
    "wedding": {
        "Wedding decor": ("Wedding centerpieces", "Wedding flowers", "Wedding table settings"),
        "Wedding dresses": ("Lace wedding dresses", "Boho wedding dresses"),
        "Wedding cakes": (),
        "Wedding hairstyles": (),
        "Bridesmaid dresses": (),
        "Wedding invitations": (),
        "Wedding photography": (),
        "Wedding venues": (),
        "Engagement rings": (),
        "Wedding planning": (),
        "Rustic weddings": (),
        "Groom attire": (),
    },
    "womens_fashion": {
        "Outfits": (
            "Casual outfits",
            "Work outfits",
            "Summer outfits",
            "Fall outfits",
            "Winter outfits",
        ),
        "Shoes": ("Sneakers", "Boots", "Heels"),
        "Jewelry": ("Earrings", "Necklaces", "Rings"),
        "Dresses": (),
        "Bags": (),
        "Street style": (),
        "Plus size fashion": (),
        "Activewear": (),
        "Swimwear": (),
        "Accessories": (),
        "Capsule wardrobe": (),
        "Vintage fashion": (),
    },
}


@dataclass(frozen=True)
class Interest:
    """One interest of the taxonomy, with what the generator needs beyond the contract's columns."""

    interest_id: str
    name: str
    parent_id: str | None
    level: int
    category: str
    """Key of the level-1 ancestor-or-self (``food_and_drinks``)."""
    rank: int
    """Position among its siblings: earlier siblings are the more popular ones."""


def interest_id_for(path: str) -> str:
    """A stable 12-digit, Pinterest-looking id derived from an interest's path in the tree."""
    digest = hashlib.blake2b(path.encode(), digest_size=8).digest()
    return str(100_000_000_000 + int.from_bytes(digest, "big") % 900_000_000_000)


@cache
def interests() -> tuple[Interest, ...]:
    """Every interest, depth-first: a category, then its subtree, in the order of ``CATEGORIES``."""
    result: list[Interest] = []
    for key, display_name in CATEGORIES:
        category_id = interest_id_for(key)
        result.append(Interest(category_id, display_name, None, 1, key, 0))
        for rank2, (name2, children) in enumerate(_TREE[key].items()):
            id2 = interest_id_for(f"{key}/{name2}")
            result.append(Interest(id2, name2, category_id, 2, key, rank2))
            for rank3, name3 in enumerate(children):
                id3 = interest_id_for(f"{key}/{name2}/{name3}")
                result.append(Interest(id3, name3, id2, 3, key, rank3))
    ids = [interest.interest_id for interest in result]
    if len(set(ids)) != len(ids):  # pragma: no cover - guards edits to the tree
        raise RuntimeError("interest id collision in the taxonomy; rename an interest")
    return tuple(result)


@dataclass(frozen=True)
class InterestArrays:
    """The interest taxonomy as arrays, with how content spreads over each category's subtree."""

    ids: list[str]
    names: list[str]
    parent_ids: list[str | None]
    category: npt.NDArray[np.int64]
    """Index into ``CATEGORY_KEYS`` of each interest's level-1 ancestor-or-self."""
    level: npt.NDArray[np.int64]
    parent: npt.NDArray[np.int64]
    """Index of the parent interest, -1 for a category."""
    share_in_category: FloatArray
    """Share of a category's pins that are tagged with this interest; sums to 1 per category."""

    @classmethod
    def build(cls) -> InterestArrays:
        nodes = interests()
        index = {node.interest_id: i for i, node in enumerate(nodes)}
        category = np.array([CATEGORY_KEYS.index(node.category) for node in nodes])
        level = np.array([node.level for node in nodes])
        parent = np.array([index[node.parent_id] if node.parent_id else -1 for node in nodes])
        rank = np.array([node.rank for node in nodes], dtype=np.float64)
        has_children = np.zeros(len(nodes), dtype=bool)
        has_children[parent[parent >= 0]] = True

        # Pins are tagged with the most specific interest that fits: few with the bare category,
        # most with a subcategory, and with a level-3 interest under about half of the subcategories
        # that have them. Earlier siblings are the more popular ones.
        share = np.zeros(len(nodes))
        share[level == 1] = 0.12
        for c in range(len(CATEGORY_KEYS)):
            level2 = np.flatnonzero((level == 2) & (category == c))
            weights = 1.0 / (rank[level2] + 1.0) ** 0.7
            share[level2] = 0.88 * weights / weights.sum()
        for node in np.flatnonzero(has_children):
            children = np.flatnonzero(parent == node)
            weights = 1.0 / (rank[children] + 1.0) ** 0.5
            share[children] = 0.55 * share[node] * weights / weights.sum()
            share[node] *= 0.45
        return cls(
            ids=[node.interest_id for node in nodes],
            names=[node.name for node in nodes],
            parent_ids=[node.parent_id for node in nodes],
            category=category,
            level=level,
            parent=parent,
            share_in_category=share,
        )

    def table(self) -> pa.Table:
        return pa.table(
            {
                "interest_id": pa.array(self.ids, pa.string()),
                "name": pa.array(self.names, pa.string()),
                "parent_id": pa.array(self.parent_ids, pa.string()),
            }
        )

    def category_distribution(self, category: int) -> FloatArray:
        """Probability over all interests of a pin of ``category`` being tagged with each."""
        return np.where(self.category == category, self.share_in_category, 0.0)
