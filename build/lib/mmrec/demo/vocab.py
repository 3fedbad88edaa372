"""Words the demo corpus is made of: one spec per hidden genre, plus words every genre shares.

Each genre has a style name (what a biography would call it), words playlist titles use, and a lyrical theme.
Songs draw their lyrics, titles and biographies mostly from their genre's words, so text modalities carry the
genre, noisily. The words are real English (and a little Spanish) so sentence-transformers see real meaning.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GenreSpec:
    name: str
    playlist_words: tuple[str, ...]
    theme: tuple[str, ...]


def _spec(name: str, playlist_words: str, theme: str) -> GenreSpec:
    return GenreSpec(name, tuple(playlist_words.split(",")), tuple(theme.split()))


BASE_GENRES: tuple[GenreSpec, ...] = (
    _spec("indie folk", "folk,acoustic,coffee shop,indie,campfire",
          "river mountain cabin wood fire home road morning whiskey pine wander valley"),
    _spec("synthwave", "synthwave,retro,night drive,80s,neon",
          "neon night drive city chrome laser midnight highway electric glow tape arcade"),
    _spec("trap", "trap,turn up,hype,rap,bangers",
          "money chain drip ice hustle block cash gang flex whip bands plug"),
    _spec("country", "country,road trip,summer nights,truck,southern",
          "truck dirt beer porch boots tailgate farm hometown creek church sunday field"),
    _spec("metal", "metal,gym,heavy,headbang,rage",
          "blood steel war darkness iron grave scream storm chaos throne doom serpent"),
    _spec("dream pop", "dreamy,chill,sleep,float,ethereal",
          "haze float velvet dream cloud pastel shimmer sleep moon drift silk glass"),
    _spec("reggae", "reggae,island,beach,roots,summer",
          "island sun babylon roots sea freedom irie rhythm zion peace shore herb"),
    _spec("gospel", "worship,sunday,gospel,praise,faith",
          "lord grace praise heaven glory faith holy spirit blessing mercy amen savior"),
    _spec("house", "house,party,dance,club,pregame",
          "floor bass body move beat tonight lights club groove higher feel sweat"),
    _spec("emo", "emo,sad,feels,throwback,angst",
          "heart tears broken sorry alone scars pale bleeding apology basement december goodbye"),
    _spec("latin pop", "latin,reggaeton,fiesta,verano,baile",
          "baila corazon fuego noche playa amor cuerpo loca ritmo besame vida sol"),
    _spec("classical", "classical,study,focus,piano,orchestra",
          "sonata allegro concerto minuet nocturne adagio symphony prelude fugue etude opus cantata"),
    _spec("jazz", "jazz,lounge,dinner,smooth,sunday morning",
          "swing blue smoke saxophone lounge cool bourbon piano avenue rain brass cigarette"),
    _spec("k-pop", "kpop,k-pop,idol,bops,fantasy",
          "shine star fantasy sparkle forever candy butterfly light universe galaxy crown wings"),
    _spec("grunge", "grunge,90s,alternative,flannel,garage",
          "dirt rust teen spirit grey nothing apathy flannel ache numb smell lithium"),
    _spec("disco", "disco,funk,70s,roller,boogie",
          "boogie funky glitter dance fever mirror roller strut shake saturday groove platform"),
    _spec("lo-fi", "lofi,lo-fi,study beats,chillhop,rainy day",
          "study rain coffee window dust sleepy cozy autumn vinyl slow afternoon blanket"),
    _spec("punk", "punk,skate,mosh,loud,rebel",
          "riot anarchy noise fast kick system rage street wall smash youth loud"),
    _spec("r&b", "rnb,r&b,slow jams,bedroom,smooth",
          "silk slow touch lately tender honey skin whisper lover candle late satin"),
    _spec("bluegrass", "bluegrass,banjo,appalachia,americana,old time",
          "banjo holler moonshine kentucky fiddle train lonesome hollow porch mule hills cabin"),
)

GENERIC_PLAYLIST_NAMES = (
    "summer", "chill", "party", "workout", "road trip", "my playlist", "throwbacks", "good vibes", "favorites",
    "car", "running", "new", "mix", "songs", "music", "random", "love", "feels", "sleep", "lit",
)

COMMON_WORDS = (
    "i you we they love know baby night time feel never always heart way want need say go come back tonight "
    "life world day light dream take make little only still let down yeah oh away right together home tell"
).split()

DROPPED_G_WORDS = (
    "singin' lovin' runnin' fallin' cryin' drivin' burnin' dreamin' waitin' dancin' talkin' thinkin' "
    "rollin' movin' goin' comin' feelin' shinin' breakin' walkin'"
).split()

STOP_LINE_TEMPLATES = (
    "{a} {b} in the {c}",
    "we were {g} through the {c}",
    "oh my {a}, {b} {c}",
    "you and i, {a} and {b}",
    "{g} with the {a} tonight",
    "never let the {a} go {b}",
    "all the {a} and all the {b}",
    "take me to the {a}, {c}",
)

BIO_ACTS = ("singer-songwriter", "band", "duo", "producer", "collective", "trio", "rapper", "quartet", "DJ")
BIO_ADJECTIVES = ("acclaimed", "underground", "prolific", "restless", "beloved", "enigmatic", "rising", "veteran")
CITIES = (
    "Austin", "Atlanta", "Berlin", "Bristol", "Chicago", "Detroit", "Glasgow", "Kingston", "Lagos", "London",
    "Los Angeles", "Manchester", "Melbourne", "Montreal", "Nashville", "New Orleans", "Oslo", "Paris", "Seattle",
    "Seoul", "Stockholm", "Tokyo", "Toronto", "San Juan", "Medellin",
)

SYLLABLES = (
    "ka lo mi ra ne vo sa ti lu be da fen mar os el ry tan qui zo pha ver nal dor cas lin mo ju re ba shi"
).split()


def genre_specs(count: int) -> tuple[GenreSpec, ...]:
    """`count` genre specs: the base genres first, then blends of two base genres for larger corpora."""
    if count <= len(BASE_GENRES):
        return BASE_GENRES[:count]
    specs = list(BASE_GENRES)
    n = len(BASE_GENRES)
    for i in range(count - n):
        a, b = BASE_GENRES[i % n], BASE_GENRES[(i * 7 + 3) % n]
        specs.append(
            GenreSpec(
                f"{a.name} {b.name} crossover {i // n + 1}",
                a.playlist_words[:3] + b.playlist_words[:2],
                a.theme[:8] + b.theme[:4],
            )
        )
    return tuple(specs)
