"""Where the synthetic platform's users live: countries and US metros (Nielsen DMAs).

The weights are rough shares of a visual-discovery platform's audience (US-heavy, a long tail of
countries) and of US TV households per DMA, so that country and metro breakdowns in insight
documents look plausible. Each country also carries a representative UTC offset, which the event
generator uses to put a user's activity in their local evening.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Country:
    """A country users live in: ISO 3166-1 alpha-2 code, audience weight, typical UTC offset."""

    code: str
    weight: float
    utc_offset_hours: float


@dataclass(frozen=True)
class Metro:
    """A US Nielsen Designated Market Area: its code, display name and TV households (thousands)."""

    code: str
    name: str
    households: int


COUNTRIES: tuple[Country, ...] = (
    Country("US", 48.0, -5.5),
    Country("BR", 6.5, -3),
    Country("MX", 4.0, -6),
    Country("GB", 4.0, 0),
    Country("DE", 3.5, 1),
    Country("FR", 3.5, 1),
    Country("CA", 3.5, -5.5),
    Country("IT", 2.0, 1),
    Country("ES", 2.0, 1),
    Country("AU", 2.0, 10),
    Country("JP", 1.5, 9),
    Country("IN", 1.5, 5.5),
    Country("AR", 1.0, -3),
    Country("CO", 1.0, -5),
    Country("NL", 1.0, 1),
    Country("PL", 1.0, 1),
    Country("PH", 1.0, 8),
    Country("ID", 1.0, 7),
    Country("CL", 0.8, -4),
    Country("TR", 0.8, 3),
    Country("SE", 0.6, 1),
    Country("KR", 0.6, 9),
    Country("PE", 0.6, -5),
    Country("ZA", 0.5, 2),
    Country("BE", 0.5, 1),
    Country("AT", 0.4, 1),
    Country("CH", 0.4, 1),
    Country("PT", 0.4, 0),
    Country("MY", 0.4, 8),
    Country("TH", 0.4, 7),
    Country("VN", 0.4, 7),
    Country("IE", 0.3, 0),
    Country("NZ", 0.3, 12),
    Country("NO", 0.3, 1),
    Country("DK", 0.3, 1),
    Country("SG", 0.3, 8),
    Country("RO", 0.3, 2),
    Country("GR", 0.3, 2),
    Country("CZ", 0.3, 1),
    Country("UA", 0.3, 2),
    Country("EG", 0.3, 2),
    Country("SA", 0.3, 3),
    Country("AE", 0.3, 4),
    Country("FI", 0.2, 2),
    Country("HU", 0.2, 1),
    Country("IL", 0.2, 2),
    Country("NG", 0.2, 1),
    Country("EC", 0.2, -5),
    Country("VE", 0.2, -4),
    Country("GT", 0.2, -6),
    Country("DO", 0.2, -4),
    Country("PR", 0.2, -4),
    Country("UY", 0.1, -3),
    Country("CR", 0.1, -6),
    Country("KE", 0.1, 3),
    Country("HR", 0.1, 1),
    Country("SK", 0.1, 1),
    Country("BG", 0.1, 2),
    Country("RS", 0.1, 1),
    Country("LT", 0.05, 2),
    Country("LV", 0.05, 2),
    Country("EE", 0.05, 2),
    Country("SI", 0.05, 1),
    Country("LU", 0.03, 1),
    Country("IS", 0.03, 0),
    Country("MT", 0.03, 1),
    Country("CY", 0.03, 2),
)

#: The largest US DMAs, with real Nielsen codes and names and approximate TV households.
METROS: tuple[Metro, ...] = (
    Metro("501", "New York, NY", 7453),
    Metro("803", "Los Angeles, CA", 5838),
    Metro("602", "Chicago, IL", 3485),
    Metro("504", "Philadelphia, PA", 3109),
    Metro("623", "Dallas-Ft. Worth, TX", 3041),
    Metro("618", "Houston, TX", 2750),
    Metro("524", "Atlanta, GA", 2680),
    Metro("807", "San Francisco-Oakland-San Jose, CA", 2596),
    Metro("511", "Washington, DC (Hagerstown, MD)", 2589),
    Metro("506", "Boston, MA (Manchester, NH)", 2514),
    Metro("753", "Phoenix (Prescott), AZ", 2120),
    Metro("539", "Tampa-St. Petersburg (Sarasota), FL", 2070),
    Metro("819", "Seattle-Tacoma, WA", 2010),
    Metro("505", "Detroit, MI", 1870),
    Metro("613", "Minneapolis-St. Paul, MN", 1810),
    Metro("534", "Orlando-Daytona Beach-Melbourne, FL", 1800),
    Metro("751", "Denver, CO", 1790),
    Metro("528", "Miami-Ft. Lauderdale, FL", 1740),
    Metro("510", "Cleveland-Akron (Canton), OH", 1460),
    Metro("862", "Sacramento-Stockton-Modesto, CA", 1460),
    Metro("560", "Raleigh-Durham (Fayetteville), NC", 1330),
    Metro("820", "Portland, OR", 1280),
    Metro("517", "Charlotte, NC", 1270),
    Metro("609", "St. Louis, MO", 1240),
    Metro("770", "Salt Lake City, UT", 1220),
    Metro("659", "Nashville, TN", 1180),
    Metro("527", "Indianapolis, IN", 1170),
    Metro("508", "Pittsburgh, PA", 1140),
    Metro("512", "Baltimore, MD", 1130),
    Metro("825", "San Diego, CA", 1100),
    Metro("641", "San Antonio, TX", 1050),
    Metro("635", "Austin, TX", 1030),
    Metro("535", "Columbus, OH", 1000),
    Metro("616", "Kansas City, MO", 960),
    Metro("533", "Hartford & New Haven, CT", 960),
    Metro("515", "Cincinnati, OH", 930),
    Metro("567", "Greenville-Spartanburg-Asheville-Anderson, SC", 910),
    Metro("617", "Milwaukee, WI", 870),
    Metro("548", "West Palm Beach-Ft. Pierce, FL", 870),
    Metro("839", "Las Vegas, NV", 860),
    Metro("561", "Jacksonville, FL", 780),
    Metro("563", "Grand Rapids-Kalamazoo-Battle Creek, MI", 750),
    Metro("566", "Harrisburg-Lancaster-Lebanon-York, PA", 750),
    Metro("650", "Oklahoma City, OK", 740),
    Metro("630", "Birmingham (Anniston and Tuscaloosa), AL", 740),
    Metro("544", "Norfolk-Portsmouth-Newport News, VA", 740),
    Metro("518", "Greensboro-High Point-Winston Salem, NC", 730),
    Metro("790", "Albuquerque-Santa Fe, NM", 700),
    Metro("529", "Louisville, KY", 690),
    Metro("622", "New Orleans, LA", 640),
    Metro("640", "Memphis, TN", 640),
    Metro("571", "Ft. Myers-Naples, FL", 620),
    Metro("556", "Richmond-Petersburg, VA", 610),
    Metro("514", "Buffalo, NY", 600),
    Metro("866", "Fresno-Visalia, CA", 600),
    Metro("521", "Providence-New Bedford, MA", 600),
    Metro("532", "Albany-Schenectady-Troy, NY", 560),
    Metro("557", "Knoxville, TN", 560),
    Metro("686", "Mobile-Pensacola (Ft. Walton Beach), AL-FL", 560),
    Metro("671", "Tulsa, OK", 550),
    Metro("693", "Little Rock-Pine Bluff, AR", 540),
    Metro("789", "Tucson (Sierra Vista), AZ", 480),
    Metro("691", "Huntsville-Decatur (Florence), AL", 460),
    Metro("881", "Spokane, WA", 450),
    Metro("619", "Springfield, MO", 440),
    Metro("744", "Honolulu, HI", 430),
    Metro("679", "Des Moines-Ames, IA", 430),
    Metro("652", "Omaha, NE", 430),
    Metro("573", "Roanoke-Lynchburg, VA", 430),
    Metro("542", "Dayton, OH", 430),
    Metro("678", "Wichita-Hutchinson Plus, KS", 410),
    Metro("757", "Boise, ID", 400),
    Metro("564", "Charleston-Huntington, WV", 400),
    Metro("669", "Madison, WI", 390),
    Metro("547", "Toledo, OH", 390),
    Metro("538", "Rochester, NY", 380),
    Metro("575", "Chattanooga, TN", 380),
    Metro("765", "El Paso (Las Cruces), TX", 370),
    Metro("555", "Syracuse, NY", 360),
    Metro("716", "Baton Rouge, LA", 330),
    Metro("612", "Shreveport, LA", 330),
    Metro("811", "Reno, NV", 320),
    Metro("800", "Bakersfield, CA", 230),
    Metro("743", "Anchorage, AK", 160),
)
