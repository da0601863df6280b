"""Offline multiple-choice question bank in MMLU's layout.

The input-ablation benchmark needs questions that a small instruct model answers
correctly only some of the time, and it must run without network access.  This
module generates such a bank from fact tables and arithmetic written for this
project, so every run and every machine sees the same rows.
"""

from __future__ import annotations

import calendar as _calendar
import datetime as _datetime
import functools
import hashlib
import random
from collections.abc import Callable, Sequence
from decimal import Decimal
from numbers import Integral
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported lazily: validate_mmlu_layout needs no datasets
    import datasets

__all__ = [
    "MMLU_COLUMNS",
    "builtin_questions",
    "validate_mmlu_layout",
]

MMLU_COLUMNS = ("question", "subject", "choices", "answer")

# One question: (text, correct choice, three wrong choices).
_Item = tuple[str, str, tuple[str, str, str]]

_LETTERS = ("A", "B", "C", "D")
_EXPECTED_LAYOUT = (
    "needs MMLU's columns question (str), choices (list of 4 str), "
    "answer (int index); subject (str) optional"
)
_SEED_SALT = "harness_plugins.question_bank/v1"  # a seed: keep it although the module moved


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def _rng(topic: str, purpose: str) -> random.Random:
    """A private RNG per topic so one topic's edits never reshuffle another's."""
    digest = hashlib.sha256(f"{_SEED_SALT}:{topic}:{purpose}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _fmt(value: Decimal | int) -> str:
    """Plain decimal text (no exponent, no trailing zeros) for exact answers."""
    text = format(Decimal(value).normalize(), "f")
    return "0" if text in ("-0", "") else text


def _pick(
    rng: random.Random, correct: str, candidates: Sequence[str], k: int = 3
) -> tuple[str, ...]:
    """Choose k wrong options, never the correct one and never twice."""
    pool: list[str] = []
    for cand in candidates:
        if cand != correct and cand not in pool:
            pool.append(cand)
    if len(pool) < k:
        raise RuntimeError(f"not enough distractors for {correct!r}: {pool!r}")
    return tuple(rng.sample(pool, k))


def _item(question: str, correct: str, wrong: Sequence[str]) -> _Item:
    w = tuple(wrong)
    if len(w) != 3:
        raise RuntimeError(f"{question!r} needs exactly three wrong choices")
    return question, correct, (w[0], w[1], w[2])


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _join_or(parts: Sequence[str]) -> str:
    return ", ".join(parts[:-1]) + f" or {parts[-1]}"


def _fill(count: int, make: Callable[[], bool]) -> None:
    """Call make until it has added count new items; fail loudly, never spin."""
    made = attempts = 0
    while made < count:
        attempts += 1
        if attempts > 100 * count:
            raise RuntimeError(f"could only generate {made} of {count} distinct questions")
        made += make()


# --------------------------------------------------------------------------
# Fact tables (written for this project; only well-established facts)
# --------------------------------------------------------------------------

# (country, needs "the" in running text, capital, distractor group,
#  continent for "which continent" questions or None when transcontinental
#  or otherwise debatable)
_COUNTRIES: tuple[tuple[str, bool, str, str, str | None], ...] = (
    # Europe
    ("France", False, "Paris", "Europe", "Europe"),
    ("Germany", False, "Berlin", "Europe", "Europe"),
    ("Italy", False, "Rome", "Europe", "Europe"),
    ("Spain", False, "Madrid", "Europe", "Europe"),
    ("Portugal", False, "Lisbon", "Europe", "Europe"),
    ("United Kingdom", True, "London", "Europe", "Europe"),
    ("Ireland", False, "Dublin", "Europe", "Europe"),
    ("Netherlands", True, "Amsterdam", "Europe", "Europe"),
    ("Belgium", False, "Brussels", "Europe", "Europe"),
    ("Switzerland", False, "Bern", "Europe", "Europe"),
    ("Austria", False, "Vienna", "Europe", "Europe"),
    ("Poland", False, "Warsaw", "Europe", "Europe"),
    ("Czech Republic", True, "Prague", "Europe", "Europe"),
    ("Slovakia", False, "Bratislava", "Europe", "Europe"),
    ("Hungary", False, "Budapest", "Europe", "Europe"),
    ("Romania", False, "Bucharest", "Europe", "Europe"),
    ("Bulgaria", False, "Sofia", "Europe", "Europe"),
    ("Greece", False, "Athens", "Europe", "Europe"),
    ("Serbia", False, "Belgrade", "Europe", "Europe"),
    ("Croatia", False, "Zagreb", "Europe", "Europe"),
    ("Slovenia", False, "Ljubljana", "Europe", "Europe"),
    ("Bosnia and Herzegovina", False, "Sarajevo", "Europe", "Europe"),
    ("Albania", False, "Tirana", "Europe", "Europe"),
    ("North Macedonia", False, "Skopje", "Europe", "Europe"),
    ("Montenegro", False, "Podgorica", "Europe", "Europe"),
    ("Denmark", False, "Copenhagen", "Europe", "Europe"),
    ("Norway", False, "Oslo", "Europe", "Europe"),
    ("Sweden", False, "Stockholm", "Europe", "Europe"),
    ("Finland", False, "Helsinki", "Europe", "Europe"),
    ("Iceland", False, "Reykjavik", "Europe", "Europe"),
    ("Estonia", False, "Tallinn", "Europe", "Europe"),
    ("Latvia", False, "Riga", "Europe", "Europe"),
    ("Lithuania", False, "Vilnius", "Europe", "Europe"),
    ("Ukraine", False, "Kyiv", "Europe", "Europe"),
    ("Belarus", False, "Minsk", "Europe", "Europe"),
    ("Moldova", False, "Chisinau", "Europe", "Europe"),
    ("Malta", False, "Valletta", "Europe", "Europe"),
    ("Liechtenstein", False, "Vaduz", "Europe", "Europe"),
    ("Russia", False, "Moscow", "Europe", None),
    ("Turkey", False, "Ankara", "Europe", None),
    ("Cyprus", False, "Nicosia", "Europe", None),
    # Asia
    ("Japan", False, "Tokyo", "Asia", "Asia"),
    ("China", False, "Beijing", "Asia", "Asia"),
    ("South Korea", False, "Seoul", "Asia", "Asia"),
    ("North Korea", False, "Pyongyang", "Asia", "Asia"),
    ("Mongolia", False, "Ulaanbaatar", "Asia", "Asia"),
    ("India", False, "New Delhi", "Asia", "Asia"),
    ("Pakistan", False, "Islamabad", "Asia", "Asia"),
    ("Bangladesh", False, "Dhaka", "Asia", "Asia"),
    ("Nepal", False, "Kathmandu", "Asia", "Asia"),
    ("Bhutan", False, "Thimphu", "Asia", "Asia"),
    ("Afghanistan", False, "Kabul", "Asia", "Asia"),
    ("Iran", False, "Tehran", "Asia", "Asia"),
    ("Iraq", False, "Baghdad", "Asia", "Asia"),
    ("Syria", False, "Damascus", "Asia", "Asia"),
    ("Jordan", False, "Amman", "Asia", "Asia"),
    ("Lebanon", False, "Beirut", "Asia", "Asia"),
    ("Saudi Arabia", False, "Riyadh", "Asia", "Asia"),
    ("Qatar", False, "Doha", "Asia", "Asia"),
    ("Oman", False, "Muscat", "Asia", "Asia"),
    ("Bahrain", False, "Manama", "Asia", "Asia"),
    ("United Arab Emirates", True, "Abu Dhabi", "Asia", "Asia"),
    ("Thailand", False, "Bangkok", "Asia", "Asia"),
    ("Vietnam", False, "Hanoi", "Asia", "Asia"),
    ("Cambodia", False, "Phnom Penh", "Asia", "Asia"),
    ("Laos", False, "Vientiane", "Asia", "Asia"),
    ("Myanmar", False, "Naypyidaw", "Asia", "Asia"),
    ("Malaysia", False, "Kuala Lumpur", "Asia", "Asia"),
    ("Philippines", True, "Manila", "Asia", "Asia"),
    ("Uzbekistan", False, "Tashkent", "Asia", "Asia"),
    ("Tajikistan", False, "Dushanbe", "Asia", "Asia"),
    ("Kyrgyzstan", False, "Bishkek", "Asia", "Asia"),
    ("Turkmenistan", False, "Ashgabat", "Asia", "Asia"),
    ("Kazakhstan", False, "Astana", "Asia", None),
    ("Georgia", False, "Tbilisi", "Asia", None),
    ("Armenia", False, "Yerevan", "Asia", None),
    ("Azerbaijan", False, "Baku", "Asia", None),
    # Africa
    ("Egypt", False, "Cairo", "Africa", None),
    ("Libya", False, "Tripoli", "Africa", "Africa"),
    ("Tunisia", False, "Tunis", "Africa", "Africa"),
    ("Algeria", False, "Algiers", "Africa", "Africa"),
    ("Morocco", False, "Rabat", "Africa", "Africa"),
    ("Sudan", False, "Khartoum", "Africa", "Africa"),
    ("Ethiopia", False, "Addis Ababa", "Africa", "Africa"),
    ("Kenya", False, "Nairobi", "Africa", "Africa"),
    ("Uganda", False, "Kampala", "Africa", "Africa"),
    ("Rwanda", False, "Kigali", "Africa", "Africa"),
    ("Nigeria", False, "Abuja", "Africa", "Africa"),
    ("Ghana", False, "Accra", "Africa", "Africa"),
    ("Senegal", False, "Dakar", "Africa", "Africa"),
    ("Mali", False, "Bamako", "Africa", "Africa"),
    ("Niger", False, "Niamey", "Africa", "Africa"),
    ("Chad", False, "N'Djamena", "Africa", "Africa"),
    ("Cameroon", False, "Yaounde", "Africa", "Africa"),
    ("Angola", False, "Luanda", "Africa", "Africa"),
    ("Zambia", False, "Lusaka", "Africa", "Africa"),
    ("Zimbabwe", False, "Harare", "Africa", "Africa"),
    ("Mozambique", False, "Maputo", "Africa", "Africa"),
    ("Madagascar", False, "Antananarivo", "Africa", "Africa"),
    ("Namibia", False, "Windhoek", "Africa", "Africa"),
    ("Botswana", False, "Gaborone", "Africa", "Africa"),
    ("Somalia", False, "Mogadishu", "Africa", "Africa"),
    ("Democratic Republic of the Congo", True, "Kinshasa", "Africa", "Africa"),
    ("Liberia", False, "Monrovia", "Africa", "Africa"),
    ("Sierra Leone", False, "Freetown", "Africa", "Africa"),
    ("Guinea", False, "Conakry", "Africa", "Africa"),
    ("Gabon", False, "Libreville", "Africa", "Africa"),
    ("Eritrea", False, "Asmara", "Africa", "Africa"),
    ("Malawi", False, "Lilongwe", "Africa", "Africa"),
    ("Burkina Faso", False, "Ouagadougou", "Africa", "Africa"),
    ("Togo", False, "Lome", "Africa", "Africa"),
    # North America (including Central America and the Caribbean)
    ("Canada", False, "Ottawa", "North America", "North America"),
    ("United States", True, "Washington, D.C.", "North America", "North America"),
    ("Mexico", False, "Mexico City", "North America", "North America"),
    ("Cuba", False, "Havana", "North America", "North America"),
    ("Jamaica", False, "Kingston", "North America", "North America"),
    ("Honduras", False, "Tegucigalpa", "North America", "North America"),
    ("Nicaragua", False, "Managua", "North America", "North America"),
    ("Costa Rica", False, "San Jose", "North America", "North America"),
    ("El Salvador", False, "San Salvador", "North America", "North America"),
    ("Dominican Republic", True, "Santo Domingo", "North America", "North America"),
    ("Haiti", False, "Port-au-Prince", "North America", "North America"),
    ("Bahamas", True, "Nassau", "North America", "North America"),
    ("Belize", False, "Belmopan", "North America", "North America"),
    ("Trinidad and Tobago", False, "Port of Spain", "North America", None),
    ("Barbados", False, "Bridgetown", "North America", "North America"),
    # South America
    ("Colombia", False, "Bogota", "South America", "South America"),
    ("Venezuela", False, "Caracas", "South America", "South America"),
    ("Ecuador", False, "Quito", "South America", "South America"),
    ("Peru", False, "Lima", "South America", "South America"),
    ("Chile", False, "Santiago", "South America", "South America"),
    ("Argentina", False, "Buenos Aires", "South America", "South America"),
    ("Uruguay", False, "Montevideo", "South America", "South America"),
    ("Paraguay", False, "Asuncion", "South America", "South America"),
    ("Brazil", False, "Brasilia", "South America", "South America"),
    ("Guyana", False, "Georgetown", "South America", "South America"),
    ("Suriname", False, "Paramaribo", "South America", "South America"),
    # Oceania (kept out of continent questions: naming conventions differ)
    ("Australia", False, "Canberra", "Oceania", None),
    ("New Zealand", False, "Wellington", "Oceania", None),
    ("Fiji", False, "Suva", "Oceania", None),
    ("Papua New Guinea", False, "Port Moresby", "Oceania", None),
    ("Samoa", False, "Apia", "Oceania", None),
    ("Tonga", False, "Nuku'alofa", "Oceania", None),
)

_CONTINENTS = ("Africa", "Asia", "Europe", "North America", "South America", "Oceania")

# (city, country, distractor group).  Cities whose name is shared by a
# well-known city elsewhere are left out so only one choice can be right.
_CITIES: tuple[tuple[str, str, str], ...] = (
    ("Barcelona", "Spain", "Europe"),
    ("Seville", "Spain", "Europe"),
    ("Munich", "Germany", "Europe"),
    ("Frankfurt", "Germany", "Europe"),
    ("Hamburg", "Germany", "Europe"),
    ("Milan", "Italy", "Europe"),
    ("Naples", "Italy", "Europe"),
    ("Venice", "Italy", "Europe"),
    ("Florence", "Italy", "Europe"),
    ("Marseille", "France", "Europe"),
    ("Lyon", "France", "Europe"),
    ("Manchester", "United Kingdom", "Europe"),
    ("Edinburgh", "United Kingdom", "Europe"),
    ("Glasgow", "United Kingdom", "Europe"),
    ("Porto", "Portugal", "Europe"),
    ("Rotterdam", "Netherlands", "Europe"),
    ("Antwerp", "Belgium", "Europe"),
    ("Geneva", "Switzerland", "Europe"),
    ("Zurich", "Switzerland", "Europe"),
    ("Krakow", "Poland", "Europe"),
    ("Gothenburg", "Sweden", "Europe"),
    ("Bergen", "Norway", "Europe"),
    ("Salzburg", "Austria", "Europe"),
    ("Thessaloniki", "Greece", "Europe"),
    ("Istanbul", "Turkey", "Europe"),
    ("Osaka", "Japan", "Asia"),
    ("Kyoto", "Japan", "Asia"),
    ("Shanghai", "China", "Asia"),
    ("Busan", "South Korea", "Asia"),
    ("Mumbai", "India", "Asia"),
    ("Kolkata", "India", "Asia"),
    ("Chennai", "India", "Asia"),
    ("Karachi", "Pakistan", "Asia"),
    ("Lahore", "Pakistan", "Asia"),
    ("Da Nang", "Vietnam", "Asia"),
    ("Chiang Mai", "Thailand", "Asia"),
    ("Dubai", "United Arab Emirates", "Asia"),
    ("Jeddah", "Saudi Arabia", "Asia"),
    ("Mecca", "Saudi Arabia", "Asia"),
    ("Casablanca", "Morocco", "Africa"),
    ("Marrakesh", "Morocco", "Africa"),
    ("Lagos", "Nigeria", "Africa"),
    ("Mombasa", "Kenya", "Africa"),
    ("Johannesburg", "South Africa", "Africa"),
    ("Cape Town", "South Africa", "Africa"),
    ("Durban", "South Africa", "Africa"),
    ("Los Angeles", "United States", "North America"),
    ("Chicago", "United States", "North America"),
    ("Houston", "United States", "North America"),
    ("Seattle", "United States", "North America"),
    ("Boston", "United States", "North America"),
    ("Miami", "United States", "North America"),
    ("Toronto", "Canada", "North America"),
    ("Montreal", "Canada", "North America"),
    ("Calgary", "Canada", "North America"),
    ("Guadalajara", "Mexico", "North America"),
    ("Cancun", "Mexico", "North America"),
    ("Rio de Janeiro", "Brazil", "South America"),
    ("Sao Paulo", "Brazil", "South America"),
    ("Medellin", "Colombia", "South America"),
    ("Valparaiso", "Chile", "South America"),
    ("Cusco", "Peru", "South America"),
    ("Guayaquil", "Ecuador", "South America"),
    ("Maracaibo", "Venezuela", "South America"),
    ("Sydney", "Australia", "Oceania"),
    ("Melbourne", "Australia", "Oceania"),
    ("Brisbane", "Australia", "Oceania"),
    ("Auckland", "New Zealand", "Oceania"),
    ("Christchurch", "New Zealand", "Oceania"),
)

_GEOGRAPHY_FACTS: tuple[tuple[str, str, str, str, str], ...] = (
    ("Which is the largest ocean on Earth?", "Pacific Ocean",
     "Atlantic Ocean", "Indian Ocean", "Arctic Ocean"),
    ("Which ocean lies between Europe and North America?", "Atlantic Ocean",
     "Pacific Ocean", "Indian Ocean", "Arctic Ocean"),
    ("On which continent is the Sahara Desert?", "Africa",
     "Asia", "Europe", "South America"),
    ("In which mountain range is Mount Everest?", "Himalayas",
     "Andes", "Alps", "Rocky Mountains"),
    ("In which country are the pyramids of Giza?", "Egypt",
     "Mexico", "Greece", "Iraq"),
    ("Which river flows through Paris?", "Seine", "Thames", "Rhine", "Danube"),
    ("Which river flows through London?", "Thames", "Seine", "Tiber", "Danube"),
    ("Which river flows through Rome?", "Tiber", "Seine", "Thames", "Rhine"),
    ("Which is the largest continent by area?", "Asia",
     "Africa", "North America", "Europe"),
    ("Which continent has the most people?", "Asia",
     "Africa", "Europe", "South America"),
    ("In which country is the Great Wall?", "China", "Japan", "India", "South Korea"),
    ("Which country has the largest land area?", "Russia",
     "Canada", "China", "United States"),
    ("In which country is most of the Amazon rainforest?", "Brazil",
     "Peru", "Colombia", "Argentina"),
    ("In which country is Mount Kilimanjaro?", "Tanzania",
     "Kenya", "Uganda", "Ethiopia"),
    ("In which city is the Eiffel Tower?", "Paris", "London", "Rome", "Berlin"),
    ("In which city is the Colosseum?", "Rome", "Athens", "Paris", "Madrid"),
    ("In which city is Big Ben?", "London", "Paris", "Dublin", "Edinburgh"),
    ("In which city is the Statue of Liberty?", "New York",
     "Boston", "Chicago", "Washington, D.C."),
    ("In which country is the Taj Mahal?", "India",
     "Pakistan", "Nepal", "Bangladesh"),
    ("In which country is the Sydney Opera House?", "Australia",
     "New Zealand", "United Kingdom", "Canada"),
    ("Which sea separates southern Europe from northern Africa?",
     "Mediterranean Sea", "Black Sea", "Red Sea", "Caspian Sea"),
    ("Which strait separates Spain from Morocco?", "Strait of Gibraltar",
     "Bosporus", "Strait of Hormuz", "Strait of Malacca"),
    ("Which canal connects the Atlantic and Pacific oceans?", "Panama Canal",
     "Suez Canal", "Kiel Canal", "Corinth Canal"),
    ("Which canal connects the Mediterranean Sea and the Red Sea?", "Suez Canal",
     "Panama Canal", "Kiel Canal", "Corinth Canal"),
    ("Which desert covers much of Mongolia and northern China?", "Gobi Desert",
     "Sahara Desert", "Kalahari Desert", "Atacama Desert"),
    ("What is the highest mountain in the world above sea level?",
     "Mount Everest", "K2", "Mount Kilimanjaro", "Mont Blanc"),
    ("Which European country is shaped like a boot?", "Italy",
     "Spain", "Greece", "Portugal"),
    ("What is the largest hot desert in the world?", "Sahara Desert",
     "Gobi Desert", "Arabian Desert", "Kalahari Desert"),
    ("Which line divides Earth into the Northern and Southern Hemispheres?",
     "Equator", "Prime Meridian", "Tropic of Cancer", "International Date Line"),
    ("Which mountain range runs along the western side of South America?",
     "Andes", "Alps", "Himalayas", "Urals"),
    ("Which country is home to the city of Venice and the island of Sicily?",
     "Italy", "Greece", "Spain", "Croatia"),
)  # fmt: skip

# (name, symbol, atomic number)
_ELEMENTS: tuple[tuple[str, str, int], ...] = (
    ("Hydrogen", "H", 1),
    ("Helium", "He", 2),
    ("Lithium", "Li", 3),
    ("Beryllium", "Be", 4),
    ("Boron", "B", 5),
    ("Carbon", "C", 6),
    ("Nitrogen", "N", 7),
    ("Oxygen", "O", 8),
    ("Fluorine", "F", 9),
    ("Neon", "Ne", 10),
    ("Sodium", "Na", 11),
    ("Magnesium", "Mg", 12),
    ("Aluminum", "Al", 13),
    ("Silicon", "Si", 14),
    ("Phosphorus", "P", 15),
    ("Sulfur", "S", 16),
    ("Chlorine", "Cl", 17),
    ("Argon", "Ar", 18),
    ("Potassium", "K", 19),
    ("Calcium", "Ca", 20),
    ("Scandium", "Sc", 21),
    ("Titanium", "Ti", 22),
    ("Vanadium", "V", 23),
    ("Chromium", "Cr", 24),
    ("Manganese", "Mn", 25),
    ("Iron", "Fe", 26),
    ("Cobalt", "Co", 27),
    ("Nickel", "Ni", 28),
    ("Copper", "Cu", 29),
    ("Zinc", "Zn", 30),
    ("Gallium", "Ga", 31),
    ("Germanium", "Ge", 32),
    ("Arsenic", "As", 33),
    ("Selenium", "Se", 34),
    ("Bromine", "Br", 35),
    ("Krypton", "Kr", 36),
    ("Rubidium", "Rb", 37),
    ("Strontium", "Sr", 38),
    ("Yttrium", "Y", 39),
    ("Zirconium", "Zr", 40),
    ("Niobium", "Nb", 41),
    ("Molybdenum", "Mo", 42),
    ("Ruthenium", "Ru", 44),
    ("Rhodium", "Rh", 45),
    ("Palladium", "Pd", 46),
    ("Silver", "Ag", 47),
    ("Cadmium", "Cd", 48),
    ("Indium", "In", 49),
    ("Tin", "Sn", 50),
    ("Antimony", "Sb", 51),
    ("Tellurium", "Te", 52),
    ("Iodine", "I", 53),
    ("Xenon", "Xe", 54),
    ("Cesium", "Cs", 55),
    ("Barium", "Ba", 56),
    ("Tungsten", "W", 74),
    ("Osmium", "Os", 76),
    ("Iridium", "Ir", 77),
    ("Platinum", "Pt", 78),
    ("Gold", "Au", 79),
    ("Mercury", "Hg", 80),
    ("Thallium", "Tl", 81),
    ("Lead", "Pb", 82),
    ("Bismuth", "Bi", 83),
    ("Polonium", "Po", 84),
    ("Radon", "Rn", 86),
    ("Francium", "Fr", 87),
    ("Radium", "Ra", 88),
    ("Thorium", "Th", 90),
    ("Uranium", "U", 92),
    ("Plutonium", "Pu", 94),
)

_PLANETS = ("Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune")

_SCIENCE_FACTS: tuple[tuple[str, str, str, str, str], ...] = (
    ("Which planet is known as the Red Planet?", "Mars", "Jupiter", "Venus", "Mercury"),
    ("Which is the largest planet in the Solar System?", "Jupiter",
     "Saturn", "Neptune", "Earth"),
    ("Which planet is famous for its large, bright rings?", "Saturn",
     "Mars", "Mercury", "Venus"),
    ("At sea level, at what temperature in degrees Celsius does water boil?", "100",
     "90", "50", "212"),
    ("At sea level, at what temperature in degrees Celsius does water freeze?", "0",
     "32", "10", "-10"),
    ("What is the chemical formula of water?", "H2O", "CO2", "O2", "H2O2"),
    ("What is the chemical formula of carbon dioxide?", "CO2", "CO", "O2", "CH4"),
    ("What is the chemical formula of table salt?", "NaCl", "KCl", "NaOH", "CaCO3"),
    ("Which gas do plants take in from the air for photosynthesis?", "Carbon dioxide",
     "Oxygen", "Nitrogen", "Helium"),
    ("Which gas makes up most of Earth's atmosphere?", "Nitrogen",
     "Oxygen", "Carbon dioxide", "Argon"),
    ("How many legs does a spider have?", "8", "6", "10", "4"),
    ("How many legs does an insect have?", "6", "8", "4", "10"),
    ("What is the largest organ of the human body?", "Skin",
     "Liver", "Heart", "Brain"),
    ("Which organ pumps blood through the human body?", "Heart",
     "Lungs", "Liver", "Kidneys"),
    ("How many bones are in the adult human body?", "206", "106", "212", "306"),
    ("How many chambers does the human heart have?", "4", "2", "3", "6"),
    ("What is the star closest to Earth?", "The Sun", "Sirius", "Polaris", "Betelgeuse"),
    ("What is Earth's only natural satellite?", "The Moon", "Phobos", "Europa", "Titan"),
    ("Which force keeps the planets in orbit around the Sun?", "Gravity",
     "Magnetism", "Friction", "Air pressure"),
    ("Which metal is a liquid at room temperature?", "Mercury",
     "Iron", "Lead", "Aluminum"),
    ("Which blood cells carry oxygen around the body?", "Red blood cells",
     "White blood cells", "Platelets", "Nerve cells"),
    ("About how many days does Earth take to orbit the Sun once?", "365",
     "30", "180", "730"),
    ("About how many hours does Earth take to spin once on its axis?", "24",
     "12", "48", "365"),
    ("Which animal is the largest mammal?", "Blue whale",
     "African elephant", "Giraffe", "Hippopotamus"),
    ("Which animal is the tallest?", "Giraffe", "Elephant", "Camel", "Ostrich"),
    ("Which of these animals is a mammal?", "Dolphin", "Shark", "Salmon", "Octopus"),
    ("Which of these animals is a reptile?", "Crocodile", "Frog", "Salmon", "Penguin"),
    ("Which of these animals is a bird?", "Penguin", "Bat", "Dolphin", "Turtle"),
    ("What is the pH of pure water at 25 degrees Celsius?", "7", "0", "14", "1"),
    ("What kind of energy does a moving object have because of its motion?",
     "Kinetic energy", "Potential energy", "Chemical energy", "Nuclear energy"),
    ("What is the SI unit of electrical resistance?", "Ohm", "Volt", "Ampere", "Watt"),
    ("What is the SI unit of electric current?", "Ampere", "Volt", "Ohm", "Newton"),
    ("What is the SI unit of force?", "Newton", "Joule", "Watt", "Pascal"),
    ("What is the SI unit of energy?", "Joule", "Newton", "Watt", "Pascal"),
    ("What is the SI unit of power?", "Watt", "Joule", "Newton", "Volt"),
    ("What is the SI unit of pressure?", "Pascal", "Newton", "Joule", "Watt"),
    ("What is the SI unit of frequency?", "Hertz", "Joule", "Watt", "Tesla"),
    ("What is the hardest natural material?", "Diamond", "Quartz", "Gold", "Granite"),
    ("Which part of a plant takes in most of the water from the soil?", "Roots",
     "Leaves", "Flowers", "Seeds"),
    ("What do bees make from the nectar of flowers?", "Honey", "Milk", "Silk", "Pollen"),
)  # fmt: skip

# Each concept appears once so no distractor can also be an opposite.
_ANTONYMS: tuple[tuple[str, str], ...] = (
    ("hot", "cold"),
    ("big", "small"),
    ("fast", "slow"),
    ("open", "closed"),
    ("happy", "sad"),
    ("day", "night"),
    ("early", "late"),
    ("empty", "full"),
    ("wet", "dry"),
    ("tall", "short"),
    ("hard", "soft"),
    ("rich", "poor"),
    ("young", "old"),
    ("strong", "weak"),
    ("loud", "quiet"),
    ("thick", "thin"),
    ("clean", "dirty"),
    ("true", "false"),
    ("win", "lose"),
    ("buy", "sell"),
    ("push", "pull"),
    ("inside", "outside"),
    ("above", "below"),
    ("front", "back"),
    ("left", "right"),
    ("north", "south"),
    ("east", "west"),
    ("cheap", "expensive"),
    ("safe", "dangerous"),
    ("friend", "enemy"),
    ("love", "hate"),
    ("always", "never"),
    ("before", "after"),
    ("first", "last"),
    ("heavy", "light"),
    ("increase", "decrease"),
    ("remember", "forget"),
    ("question", "answer"),
    ("asleep", "awake"),
    ("maximum", "minimum"),
    ("arrival", "departure"),
    ("deep", "shallow"),
    ("borrow", "lend"),
    ("appear", "disappear"),
    ("brave", "cowardly"),
    ("polite", "rude"),
    ("possible", "impossible"),
    ("inhale", "exhale"),
    ("import", "export"),
    ("floor", "ceiling"),
    ("summer", "winter"),
    ("positive", "negative"),
    ("odd", "even"),
    ("success", "failure"),
    ("guilty", "innocent"),
    ("alive", "dead"),
    ("temporary", "permanent"),
    ("public", "private"),
    ("natural", "artificial"),
    ("major", "minor"),
    ("attack", "defend"),
    ("accept", "refuse"),
    ("include", "exclude"),
    ("sharp", "blunt"),
    ("begin", "end"),
    ("vertical", "horizontal"),
    ("singular", "plural"),
    ("male", "female"),
)

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_MONTH_DAYS = (31, None, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


# --------------------------------------------------------------------------
# Topic generators.  Each returns its items in a fixed order; ids are the
# position within the topic, so other topics never shift them.
# --------------------------------------------------------------------------


def _arithmetic(rng: random.Random) -> list[_Item]:
    items: list[_Item] = []
    seen: set[str] = set()

    def add(question: str, correct: int, candidates: Sequence[int]) -> bool:
        if question in seen:
            return False
        wrong = [str(c) for c in candidates if c >= 0]
        items.append(_item(question, str(correct), _pick(rng, str(correct), wrong)))
        seen.add(question)
        return True

    def add_2digit() -> bool:
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        c = a + b
        return add(f"What is {a} + {b}?", c, [c - 1, c + 1, c - 10, c + 10, c + 2])

    def add_3digit() -> bool:
        a, b = rng.randint(100, 999), rng.randint(100, 999)
        c = a + b
        return add(f"What is {a} + {b}?", c, [c - 1, c + 1, c - 10, c + 10, c + 100, c - 100])

    def sub_2digit() -> bool:
        a = rng.randint(20, 99)
        b = rng.randint(10, a - 1)
        c = a - b
        return add(f"What is {a} - {b}?", c, [c - 1, c + 1, c + 10, c - 10, c + 2, a + b])

    def sub_3digit() -> bool:
        a = rng.randint(200, 999)
        b = rng.randint(100, a - 1)
        c = a - b
        return add(f"What is {a} - {b}?", c, [c - 1, c + 1, c + 10, c - 10, c + 100, c - 100])

    def times_table() -> bool:
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        c = a * b
        cands = [a * (b + 1), a * (b - 1), (a + 1) * b, (a - 1) * b, c + 1, c - 1, a + b]
        return add(f"What is {a} times {b}?", c, cands)

    def times_2x1() -> bool:
        a, b = rng.randint(11, 99), rng.randint(3, 9)
        c = a * b
        cands = [c + b, c - b, c + 10, c - 10, c + 1, c - 1, a * (b + 1)]
        return add(f"What is {a} times {b}?", c, cands)

    def divide() -> bool:
        a, b = rng.randint(2, 15), rng.randint(2, 12)
        c = a * b
        return add(f"What is {c} divided by {b}?", a, [a + 1, a - 1, a + 2, a - 2, b])

    _fill(80, add_2digit)
    _fill(50, add_3digit)
    _fill(70, sub_2digit)
    _fill(40, sub_3digit)
    _fill(60, times_table)
    _fill(50, times_2x1)
    _fill(50, divide)
    return items


def _the(name: str, article: bool) -> str:
    return f"the {name}" if article else name


def _world_capitals(rng: random.Random) -> list[_Item]:
    items: list[_Item] = []
    for name, article, capital, group, _ in _COUNTRIES:
        pool = sorted(c for _, _, c, g, _ in _COUNTRIES if g == group and c != capital)
        question = f"What is the capital of {_the(name, article)}?"
        items.append(_item(question, capital, _pick(rng, capital, pool)))
    for name, _, capital, group, _ in _COUNTRIES:
        pool = sorted(n for n, _, _, g, _ in _COUNTRIES if g == group and n != name)
        question = f"Which country has {capital} as its capital?"
        items.append(_item(question, name, _pick(rng, name, pool)))
    return items


def _geography(rng: random.Random) -> list[_Item]:
    items: list[_Item] = []
    for name, article, _, _, continent in _COUNTRIES:
        if continent is None:
            continue
        others = [c for c in _CONTINENTS if c != continent]
        question = f"On which continent is {_the(name, article)}?"
        items.append(_item(question, continent, _pick(rng, continent, others)))
    countries_by_group: dict[str, list[str]] = {}
    for name, _, _, group, _ in _COUNTRIES:
        countries_by_group.setdefault(group, []).append(name)
    for _, country, group in _CITIES:
        if country not in countries_by_group[group]:
            countries_by_group[group].append(country)
    for city, country, group in _CITIES:
        pool = sorted(c for c in countries_by_group[group] if c != country)
        question = f"In which country is the city of {city}?"
        items.append(_item(question, country, _pick(rng, country, pool)))
    for question, correct, *wrong in _GEOGRAPHY_FACTS:
        items.append(_item(question, correct, wrong))
    return items


def _chemical_symbols(rng: random.Random) -> list[_Item]:
    items: list[_Item] = []
    symbols = [s for _, s, _ in _ELEMENTS]
    names = [n for n, _, _ in _ELEMENTS]
    for name, symbol, _ in _ELEMENTS:
        # Symbols that start like the element's name or its real symbol are
        # the tempting wrong answers (e.g. "I" or "Ir" for iron).
        initials = {name[0], symbol[0]}
        near = sorted(s for s in symbols if s != symbol and s[0] in initials)
        far = sorted(s for s in symbols if s != symbol and s[0] not in initials)
        chosen = list(rng.sample(near, min(2, len(near))))
        chosen += rng.sample(far, 3 - len(chosen))
        items.append(_item(f"What is the chemical symbol for {name.lower()}?", symbol, chosen))
    for name, symbol, _ in _ELEMENTS:
        near = sorted(n for n in names if n != name and n[0] == symbol[0])
        far = sorted(n for n in names if n != name and n[0] != symbol[0])
        chosen = list(rng.sample(near, min(2, len(near))))
        chosen += rng.sample(far, 3 - len(chosen))
        items.append(_item(f"Which element has the chemical symbol {symbol}?", name, chosen))
    return items


def _atomic_numbers(rng: random.Random) -> list[_Item]:
    items: list[_Item] = []
    for name, _, z in _ELEMENTS:
        cands = [str(v) for v in (z - 2, z - 1, z + 1, z + 2, z + 10) if v > 0]
        question = f"What is the atomic number of {name.lower()}?"
        items.append(_item(question, str(z), _pick(rng, str(z), cands)))
    return items


def _general_science(rng: random.Random) -> list[_Item]:
    items: list[_Item] = []
    for i, planet in enumerate(_PLANETS):
        near = [_PLANETS[j] for j in range(i - 3, i + 4) if 0 <= j < len(_PLANETS)]
        question = f"Which planet is the {_ordinal(i + 1)} planet from the Sun?"
        items.append(_item(question, planet, _pick(rng, planet, near)))
    for question, correct, *wrong in _SCIENCE_FACTS:
        items.append(_item(question, correct, wrong))
    return items


def _antonyms(rng: random.Random) -> list[_Item]:
    words = [w for pair in _ANTONYMS for w in pair]
    items: list[_Item] = []
    for direction in (0, 1):
        for pair in _ANTONYMS:
            word, opposite = pair[direction], pair[1 - direction]
            pool = [w for w in words if w not in pair]
            question = f"What is the opposite of '{word}'?"
            items.append(_item(question, opposite, _pick(rng, opposite, pool)))
    return items


# (from unit, to unit, exact factor, wrong factors, value kind)
_CONVERSIONS: tuple[tuple[str, str, str, tuple[str, str, str], str], ...] = (
    ("meters", "centimeters", "100", ("10", "1000", "10000"), "halves"),
    ("kilometers", "meters", "1000", ("100", "10", "10000"), "halves"),
    ("kilograms", "grams", "1000", ("100", "10", "10000"), "halves"),
    ("liters", "milliliters", "1000", ("100", "10", "10000"), "halves"),
    ("centimeters", "millimeters", "10", ("100", "1000", "0.1"), "halves"),
    ("meters", "millimeters", "1000", ("100", "10", "10000"), "halves"),
    ("metric tons", "kilograms", "1000", ("100", "10", "10000"), "halves"),
    ("hours", "minutes", "60", ("100", "30", "120"), "halves"),
    ("minutes", "seconds", "60", ("100", "30", "120"), "halves"),
    ("days", "hours", "24", ("12", "60", "48"), "ints"),
    ("weeks", "days", "7", ("5", "10", "14"), "ints"),
    ("hours", "seconds", "3600", ("60", "360", "36000"), "ints"),
    ("grams", "kilograms", "0.001", ("0.01", "0.1", "0.0001"), "halves"),
    ("centimeters", "meters", "0.01", ("0.1", "1", "0.001"), "halves"),
    ("milliliters", "liters", "0.001", ("0.01", "0.1", "0.0001"), "halves"),
    ("meters", "kilometers", "0.001", ("0.01", "0.1", "0.0001"), "halves"),
    ("millimeters", "centimeters", "0.1", ("1", "0.01", "10"), "halves"),
)

_INTS = [Decimal(n) for n in range(2, 21)]
_HALVES = _INTS + [Decimal(n) + Decimal("0.5") for n in range(10)]


def _unit_conversion(rng: random.Random) -> list[_Item]:
    items: list[_Item] = []
    for src, dst, factor_text, wrong_factors, kind in _CONVERSIONS:
        factor = Decimal(factor_text)
        results = _INTS if kind == "ints" else _HALVES
        # Small factors pick a clean result first so the question value is
        # a whole number ("How many kilograms are in 2500 grams?").
        upward = factor >= 1
        for base in rng.sample(results, 14):
            value = base if upward else base / factor
            correct = value * factor
            wrong = [_fmt(value * Decimal(w)) for w in wrong_factors]
            question = f"How many {dst} are in {_fmt(value)} {src}?"
            items.append(_item(question, _fmt(correct), wrong))
    return items


def _comparisons(rng: random.Random) -> list[_Item]:
    items: list[_Item] = []
    seen: set[str] = set()

    def add(question: str, correct: str, wrong: Sequence[str]) -> bool:
        if question in seen:
            return False
        seen.add(question)
        items.append(_item(question, correct, wrong))
        return True

    def ints_question(largest: bool) -> bool:
        if rng.random() < 0.5:
            digits = rng.sample(range(1, 10), 3)
            perms = sorted({100 * a + 10 * b + c for a in digits for b in digits for c in digits
                            if len({a, b, c}) == 3})  # fmt: skip
            values = rng.sample(perms, 4)
        else:
            values = rng.sample(range(100, 1000), 4)
        return ranked("number", values, str, largest)

    def decimals_question(largest: bool) -> bool:
        a, b = rng.sample(range(1, 10), 2)
        texts = sorted({f"0.{a}", f"0.{a}{b}", f"0.{b}{a}", f"0.{a}0{b}", f"0.{b}", f"0.0{a}"})
        values = [Decimal(t) for t in rng.sample(texts, 4)]
        return ranked("number", values, _fmt, largest)

    def ranked(noun: str, values: Sequence[Any], show: Callable[[Any], str], largest: bool) -> bool:
        order = sorted(values)
        best = order[-1] if largest else order[0]
        shown = [show(v) for v in values]
        word = "largest" if largest else "smallest"
        question = f"Which {noun} is the {word}: {_join_or(shown)}?"
        return add(question, show(best), [show(v) for v in values if v != best])

    def measure_question(kind: str, pick_max: bool) -> bool:
        if kind == "length":
            amounts = rng.sample(range(500, 2001, 50), 4)  # millimeters
            units = (("m", Decimal(1000)), ("cm", Decimal(10)), ("mm", Decimal(1)))
            word = "longest" if pick_max else "shortest"
        else:
            amounts = rng.sample(range(500, 3001, 100), 4)  # grams
            units = (("kg", Decimal(1000)), ("g", Decimal(1)))
            word = "heaviest" if pick_max else "lightest"
        shown = []
        for amount in amounts:
            unit, size = rng.choice(units)
            shown.append(f"{_fmt(Decimal(amount) / size)} {unit}")
        best_index = amounts.index(max(amounts) if pick_max else min(amounts))
        question = f"Which is the {word}: {_join_or(shown)}?"
        wrong = [s for i, s in enumerate(shown) if i != best_index]
        return add(question, shown[best_index], wrong)

    plan: list[tuple[int, Callable[[], bool]]] = [
        (40, lambda: ints_question(True)),
        (40, lambda: ints_question(False)),
        (30, lambda: decimals_question(True)),
        (20, lambda: decimals_question(False)),
        (15, lambda: measure_question("length", True)),
        (10, lambda: measure_question("length", False)),
        (15, lambda: measure_question("mass", True)),
        (10, lambda: measure_question("mass", False)),
    ]
    for count, make in plan:
        _fill(count, make)
    return items


def _number_sequences(rng: random.Random) -> list[_Item]:
    items: list[_Item] = []
    seen: set[str] = set()

    def add(terms: Sequence[int], nxt: int, candidates: Sequence[int]) -> bool:
        question = f"What number comes next: {', '.join(map(str, terms))}, ...?"
        if question in seen:
            return False
        seen.add(question)
        wrong = [str(c) for c in candidates if c >= 0]
        items.append(_item(question, str(nxt), _pick(rng, str(nxt), wrong)))
        return True

    def ascending() -> bool:
        a, d = rng.randint(1, 40), rng.randint(2, 15)
        terms = [a + i * d for i in range(4)]
        n = a + 4 * d
        return add(terms, n, [n + 1, n - 1, n + 2, n + d, n - 2])

    def descending() -> bool:
        a, d = rng.randint(60, 120), rng.randint(2, 12)
        terms = [a - i * d for i in range(4)]
        n = a - 4 * d
        return add(terms, n, [n + 1, n - 1, n - d, n + 2, n - 2])

    def geometric() -> bool:
        a, r = rng.randint(1, 10), rng.randint(2, 3)
        terms = [a * r**i for i in range(4)]
        n = a * r**4
        linear = terms[-1] + (terms[-1] - terms[-2])
        return add(terms, n, [linear, n + 1, n - 1, n + a, n * r])

    def squares() -> bool:
        k = rng.randint(1, 12)
        terms = [(k + i) ** 2 for i in range(4)]
        n = (k + 4) ** 2
        linear = terms[-1] + (terms[-1] - terms[-2])
        return add(terms, n, [linear, n + 1, n - 1, n + 2, n + k + 4])

    plan: list[tuple[int, Callable[[], bool]]] = [
        (60, ascending),
        (25, descending),
        (20, geometric),
        (10, squares),
    ]
    for count, make in plan:
        _fill(count, make)
    return items


def _calendar_questions(rng: random.Random) -> list[_Item]:
    items: list[_Item] = []

    def near_days(index: int) -> list[str]:
        return [_DAYS[(index + k) % 7] for k in (-2, -1, 1, 2)]

    def near_months(index: int) -> list[str]:
        return [_MONTHS[(index + k) % 12] for k in (-2, -1, 1, 2)]

    for start, day in enumerate(_DAYS):
        for n in range(1, 15):
            unit = "day" if n == 1 else "days"
            answer = (start + n) % 7
            question = f"Which day comes {n} {unit} after {day}?"
            items.append(
                _item(question, _DAYS[answer], _pick(rng, _DAYS[answer], near_days(answer)))
            )
    for start, day in enumerate(_DAYS):
        for n in range(1, 8):
            unit = "day" if n == 1 else "days"
            answer = (start - n) % 7
            question = f"Which day comes {n} {unit} before {day}?"
            items.append(
                _item(question, _DAYS[answer], _pick(rng, _DAYS[answer], near_days(answer)))
            )
    for start, month in enumerate(_MONTHS):
        for n in range(1, 7):
            unit = "month" if n == 1 else "months"
            answer = (start + n) % 12
            question = f"Which month comes {n} {unit} after {month}?"
            items.append(
                _item(question, _MONTHS[answer], _pick(rng, _MONTHS[answer], near_months(answer)))
            )
    for start, month in enumerate(_MONTHS):
        for n in range(1, 4):
            unit = "month" if n == 1 else "months"
            answer = (start - n) % 12
            question = f"Which month comes {n} {unit} before {month}?"
            items.append(
                _item(question, _MONTHS[answer], _pick(rng, _MONTHS[answer], near_months(answer)))
            )
    for index, month in enumerate(_MONTHS):
        question = f"Which month is the {_ordinal(index + 1)} month of the year?"
        items.append(_item(question, month, _pick(rng, month, near_months(index))))
    lengths = ["28", "29", "30", "31"]
    for month, days in zip(_MONTHS, _MONTH_DAYS, strict=True):
        if days is None:
            continue
        question = f"How many days are there in {month}?"
        items.append(_item(question, str(days), [x for x in lengths if x != str(days)]))
    for label, days in (("a common (non-leap) year", 28), ("a leap year", 29)):
        question = f"How many days does February have in {label}?"
        items.append(_item(question, str(days), [x for x in lengths if x != str(days)]))  # fmt: skip
    for label, days in (("a common (non-leap) year", 365), ("a leap year", 366)):
        question = f"How many days are there in {label}?"
        cands = [str(x) for x in (364, 365, 366, 360, 367) if x != days]
        items.append(_item(question, str(days), _pick(rng, str(days), cands)))  # fmt: skip

    # Leap years: exactly one choice is a leap year by the Gregorian rule.
    leap_years = [y for y in range(1904, 2097) if _calendar.isleap(y)]
    for year in rng.sample(leap_years, 30):
        others = [y for y in range(year - 3, year + 4) if not _calendar.isleap(y)]
        options = [year, *rng.sample(others, 3)]
        shown = [str(y) for y in sorted(options)]
        question = f"Which of these years is a leap year: {_join_or(shown)}?"
        items.append(_item(question, str(year), [s for s in shown if s != str(year)]))
    for options in ((1800, 1900, 2000, 2100), (1896, 1900, 1902, 1906), (2000, 2001, 2002, 2003)):
        leaps = [y for y in options if _calendar.isleap(y)]
        assert len(leaps) == 1, options
        shown = [str(y) for y in options]
        question = f"Which of these years is a leap year: {_join_or(shown)}?"
        items.append(_item(question, str(leaps[0]), [s for s in shown if s != str(leaps[0])]))

    # Weekday of a past date (hard for small models; computed, not recalled).
    seen: set[str] = set()

    def weekday_question() -> bool:
        ordinal = rng.randint(
            _datetime.date(1950, 1, 1).toordinal(), _datetime.date(2020, 12, 31).toordinal()
        )
        date = _datetime.date.fromordinal(ordinal)
        question = f"What day of the week was {date.day} {_MONTHS[date.month - 1]} {date.year}?"
        if question in seen:
            return False
        seen.add(question)
        answer = _DAYS[date.weekday()]
        items.append(_item(question, answer, _pick(rng, answer, near_days(date.weekday()))))
        return True

    _fill(30, weekday_question)
    return items


# Topic order here only affects generation, never ids or row order.
_TOPICS: tuple[tuple[str, Callable[[random.Random], list[_Item]]], ...] = (
    ("arithmetic", _arithmetic),
    ("world_capitals", _world_capitals),
    ("unit_conversion", _unit_conversion),
    ("chemical_symbols", _chemical_symbols),
    ("atomic_numbers", _atomic_numbers),
    ("geography", _geography),
    ("calendar", _calendar_questions),
    ("comparisons", _comparisons),
    ("number_sequences", _number_sequences),
    ("antonyms", _antonyms),
    ("general_science", _general_science),
)


@functools.lru_cache(maxsize=1)
def _bank_rows() -> tuple[tuple[str, str, str, tuple[str, ...], int], ...]:
    """Generate once per process; rows are immutable tuples so the cache is safe."""
    rows: list[tuple[str, str, str, tuple[str, ...], int]] = []
    questions: set[str] = set()
    for topic, make in _TOPICS:
        items = make(_rng(topic, "content"))
        shuffler = _rng(topic, "answer-position")
        for index, (question, correct, wrong) in enumerate(items):
            choices = [correct, *wrong]
            if len(set(choices)) != 4 or any(not c for c in choices):
                raise RuntimeError(f"bad choices for {question!r}: {choices!r}")
            if "\n" in question or question in questions:
                raise RuntimeError(f"bad or duplicate question {question!r}")
            questions.add(question)
            shuffler.shuffle(choices)
            qid = f"{topic}-{index:04d}"
            rows.append((qid, question, topic, tuple(choices), choices.index(correct)))
    # Order by a hash of the id: any prefix of the bank mixes all topics, and
    # the order does not depend on which topic was generated first.
    rows.sort(key=lambda row: hashlib.sha256(row[0].encode("utf-8")).hexdigest())
    return tuple(rows)


def builtin_questions() -> datasets.Dataset:
    """Deterministic bank; same rows in the same order on every call and machine.

    It exists so the input-ablation benchmark can run offline with questions a
    135M-parameter model gets right only sometimes.  Columns follow MMLU
    (``answer`` is a ClassLabel over A-D, i.e. an int index) plus a stable
    ``question_id`` used for train/test partitioning.
    """
    import datasets

    # datasets>=4 names the list feature List; 3.x only has Sequence.
    list_of = getattr(datasets, "List", None) or datasets.Sequence
    features = datasets.Features(
        {
            "question": datasets.Value("string"),
            "subject": datasets.Value("string"),
            "choices": list_of(datasets.Value("string")),
            "answer": datasets.ClassLabel(names=list(_LETTERS)),
            "question_id": datasets.Value("string"),
        }
    )
    rows = _bank_rows()
    return datasets.Dataset.from_dict(
        {
            "question": [r[1] for r in rows],
            "subject": [r[2] for r in rows],
            "choices": [list(r[3]) for r in rows],
            "answer": [r[4] for r in rows],
            "question_id": [r[0] for r in rows],
        },
        features=features,
    )


def _layout_error(source: str, problem: str) -> ValueError:
    where = " ".join(str(source).split())
    return ValueError(f"{where}: {problem}; {_EXPECTED_LAYOUT}")


def validate_mmlu_layout(ds: Any, source: str) -> None:
    """Fail early, in one readable line, before a benchmark run wastes model time."""
    columns = getattr(ds, "column_names", None)
    if isinstance(columns, dict):
        raise _layout_error(source, f"got several splits {sorted(columns)}, pick one")
    if not isinstance(columns, list | tuple):
        raise _layout_error(source, f"not a table with named columns ({type(ds).__name__})")
    missing = [c for c in ("question", "choices", "answer") if c not in columns]
    if missing:
        raise _layout_error(source, f"missing column {', '.join(repr(c) for c in missing)}")
    if len(ds) == 0:
        raise _layout_error(source, "has no rows")
    row = ds[0]

    question = row["question"]
    if not isinstance(question, str):
        raise _layout_error(source, f"column 'question' is {type(question).__name__}, not str")
    if "subject" in columns and not isinstance(row["subject"], str):
        kind = type(row["subject"]).__name__
        raise _layout_error(source, f"column 'subject' is {kind}, not str")
    choices = row["choices"]
    if not isinstance(choices, list | tuple):
        kind = type(choices).__name__
        raise _layout_error(source, f"column 'choices' is {kind}, not a list of str")
    if not all(isinstance(c, str) for c in choices):
        raise _layout_error(source, "column 'choices' holds a non-str item")
    if len(choices) != 4:
        raise _layout_error(source, f"column 'choices' has {len(choices)} items, not 4")
    answer = row["answer"]
    if isinstance(answer, bool) or not isinstance(answer, Integral):
        raise _layout_error(source, f"column 'answer' is {type(answer).__name__}, not int")
    if not 0 <= int(answer) < len(choices):
        raise _layout_error(
            source, f"column 'answer' is {int(answer)}, outside choices 0..{len(choices) - 1}"
        )
