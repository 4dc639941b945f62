#!/usr/bin/env python3
"""Generate the embedded sample crawl used by `refinery demo`.

Writes, next to this script:

  sample.warc.gz  WARC/1.0, one gzip member per record (like Common Crawl):
                  a warcinfo record, then request/response pairs for ~30 pages,
                  plus one metadata record.
  sample.jsonl    ~25 already-extracted plain-text records, including a few
                  broken ones.

Python 3 standard library only. The output is deterministic: fixed dates,
record ids derived from a hash of the URL, and gzip members written with
mtime=0 and a fixed header, so every run produces the same bytes (given the
same zlib).

All prose below was written for the refinery project. Every site, person,
place and product named here is fictional; all hosts are under reserved
domains (example.com/.org/.net, *.example, *.test).

Usage:  python3 crates/cli/sample/generate.py
"""

import base64
import datetime
import hashlib
import html
import json
import os
import struct
import sys
import uuid
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
WARC_PATH = os.path.join(HERE, "sample.warc.gz")
JSONL_PATH = os.path.join(HERE, "sample.jsonl")

CRAWL_START = datetime.datetime(2026, 3, 14, 8, 0, 0)
USER_AGENT = "refinery-sample-crawler/1.0 (+https://crawler.example.org/about)"


# ---------------------------------------------------------------------------
# Article bodies
#
# An article is a dict with a title, a byline line and a list of blocks:
#   ("p", text)          paragraph (plain text, escaped on output)
#   ("h2", text)         section heading
#   ("ul", [items])      bulleted list
#   ("table", [header], [[cells], ...])
#   ("lines", [lines])   one paragraph whose lines are joined with <br>
# ---------------------------------------------------------------------------

BIKE_LANES = {
    "title": "Harbor Street's protected bike lanes open after two years of debate",
    "byline": "By Dana Okafor · March 9, 2026",
    "blocks": [
        ("p", "Cyclists in Millbrook got their first look on Saturday at the protected bike lanes along Harbor Street, a mile-and-a-half project that the town council approved in 2024 after one of the longest public comment periods in the town's history."),
        ("p", "The lanes run on both sides of the street between the ferry terminal and Orchard Avenue. Unlike the painted lanes they replace, they are separated from car traffic by a raised concrete curb and a row of parked cars, an arrangement traffic engineers call a parking-protected lane. At the six intersections along the route, the curb ends a few yards early, and green paint marks the spot where drivers turning right should expect to cross paths with riders."),
        ("p", "“The old lanes were a line of paint and a prayer,” said Teresa Lund, who commutes by bike from the Eastside neighborhood to her job at the hospital. “This morning was the first time I didn't have a bus mirror pass six inches from my elbow.”"),
        ("h2", "What changed on the street"),
        ("ul", [
            "Bike lanes on both sides, six feet wide, separated from traffic by a curb and a parking lane.",
            "Parking moved away from the curb; the number of spaces fell from 212 to 188.",
            "New bus boarding islands at the Library and Fulton Street stops.",
            "Signal timing that gives cyclists and pedestrians a four-second head start at Orchard Avenue.",
        ]),
        ("p", "Not everyone is pleased. Ray Delgado, who has run a hardware store on Harbor Street for 31 years, said deliveries have become harder. “The truck used to pull up right at my door. Now the driver has to find a loading zone around the corner and wheel everything down the block.” The town added two loading zones on side streets in response to complaints during construction, and public works director Alan Whitcomb said more could follow if the first months show they are needed."),
        ("h2", "The numbers so far"),
        ("p", "Counters installed along the route recorded the following in the first week, compared with the same week last year on the old painted lanes:"),
        ("table", ["Location", "Bikes per day, 2025", "Bikes per day, 2026", "Change"], [
            ["Ferry terminal", "310", "455", "+47%"],
            ["Fulton Street", "190", "262", "+38%"],
            ["Orchard Avenue", "140", "171", "+22%"],
        ]),
        ("p", "Whitcomb cautioned against reading too much into a single week, especially one with unusually mild weather. “Ask me again in November,” he said. “If people are still riding when it's forty degrees and drizzling, then we'll know something has actually changed.”"),
        ("p", "The project cost $3.1 million, about two-thirds of which came from a state grant for safer streets. A second phase, which would extend the lanes north to the high school, is scheduled for a council vote in June."),
        ("p", "Residents can send feedback on the new layout through the town's website or at a drop-in session at the Millbrook Public Library on March 21, from 6 to 8 p.m."),
    ],
}

SOURDOUGH = {
    "title": "What's actually happening inside your sourdough starter",
    "byline": "By Priya Raman · February 2, 2026",
    "blocks": [
        ("p", "A sourdough starter doesn't look like much: a jar of flour and water that bubbles, rises, and smells faintly of yogurt and green apples. But that jar holds a small, stable ecosystem, and once you understand who lives there and what they eat, most of the advice you've read about feeding schedules and hydration starts to make sense."),
        ("h2", "Two kinds of microbes, one jar"),
        ("p", "A mature starter is dominated by two groups of organisms. The first is wild yeast, single-celled fungi that eat sugars and release carbon dioxide and a little alcohol. The gas is what leavens the bread. The second group is lactic acid bacteria, the same family that turns milk into yogurt and cabbage into sauerkraut. They eat sugars too, but their main products are lactic and acetic acids, which give sourdough its tang."),
        ("p", "The two groups get along surprisingly well. The bacteria make the dough acidic, which keeps out most of the microbes you don't want, while the particular yeasts found in starters tolerate acid better than most. Some of the bacteria can also break down maltose, a sugar many of these yeasts struggle to use, and leave behind glucose that the yeast happily consumes. The result is a partnership that can stay stable for years, as long as someone keeps feeding it."),
        ("h2", "Where the sugar comes from"),
        ("p", "Flour is mostly starch: long chains of glucose that neither yeast nor bacteria can eat directly. When you add water, enzymes already present in the flour, called amylases, begin cutting those chains into smaller sugars. This is why whole-grain flours, which carry more enzymes and more nutrients from the bran, tend to make a starter livelier than white flour alone."),
        ("h2", "Temperature changes the flavor"),
        ("p", "Yeast and bacteria respond differently to temperature, which gives bakers a useful lever. In a warm kitchen, around 78°F (26°C), the bacteria work quickly and favor lactic acid, which tastes mild and creamy. In a cooler one, closer to 65°F (18°C), fermentation slows and the balance shifts toward acetic acid, the sharper, vinegary note. If your bread is too sour for your taste, a warmer, shorter fermentation will usually help; if it tastes flat, try a longer, cooler rise."),
        ("p", "Signs of a healthy starter:"),
        ("ul", [
            "It roughly doubles within four to eight hours of feeding at room temperature.",
            "The surface is domed and covered in small bubbles at its peak.",
            "It smells pleasantly sour, not like nail polish remover.",
            "A spoonful dropped into water floats when it is at its most active.",
        ]),
        ("p", "That nail-polish smell, by the way, is not a sign that anything has gone wrong. It comes from ethyl acetate and related compounds that the culture produces when it runs out of food. A hungry starter needs a feeding, not a funeral."),
        ("table", ["Feeding ratio (starter : flour : water)", "Time to peak at 75°F", "Good for"], [
            ["1 : 1 : 1", "4–6 hours", "Baking the same day"],
            ["1 : 2 : 2", "6–8 hours", "Feeding in the morning, mixing dough in the evening"],
            ["1 : 5 : 5", "10–12 hours", "Overnight builds"],
        ]),
        ("p", "None of these numbers are rules. Every starter, every flour and every kitchen is a little different, and the best thing you can do is watch yours closely for a week. Put a rubber band around the jar at the level of the starter after feeding, note when it peaks, and you will soon know it better than any chart could tell you."),
    ],
}

BOARD_GAME = {
    "title": "Review: Lanterns of Varrow rewards patience more than cleverness",
    "byline": "By Marcus Ellery · January 18, 2026",
    "blocks": [
        ("p", "Lanterns of Varrow arrived at our table with a lot of promise and a very heavy box. It is a game for one to four players about lamplighters in an imaginary harbor city, and it asks you to spend each evening of the game deciding which streets to light, which guild favors to call in, and when to let your rivals do the hard work for you. After eleven plays across three groups, I can say it is a thoughtful, handsome game with one real flaw, and whether that flaw matters will depend on who you play with."),
        ("h2", "How it plays"),
        ("p", "Each round represents one night. Players take turns placing lamplighter tokens on a shared map of the city, paying oil to light lanterns in its districts. A lit district scores at the end of the night for every player with a lamplighter in it, but whoever lit it first earns a bonus. That tension, between lighting early and sharing the reward or waiting and risking being shut out, is the heart of the game, and it works beautifully."),
        ("p", "Around that core sit a handful of smaller systems: guild cards that bend the rules once per game, a fog track that darkens one district every round, and a market where oil gets more expensive as players buy it. None of them are complicated on their own, and the rulebook introduces them in a sensible order. Our first game took about two and a half hours including teaching; later games with experienced players finished in about ninety minutes."),
        ("h2", "What worked"),
        ("ul", [
            "The map is beautiful and genuinely readable across the table, even in poor light.",
            "Turns are quick, so there is little waiting around between decisions.",
            "The fog track creates a small drama every round without feeling random.",
            "The solo mode is more than an afterthought, and it taught me strategies that helped in multiplayer games.",
        ]),
        ("h2", "What didn't"),
        ("p", "The flaw is the endgame. In the last two rounds the scoring becomes easy to calculate, and players who enjoy calculating will do so. Our four-player games tended to stall as each person worked out exactly how many points every possible move was worth. In one group this was a small annoyance; in another it turned the final half hour into a silent arithmetic exam. Players who prefer to play by feel will not notice. Players who cannot resist an optimal move will."),
        ("table", ["Player count", "Our rating", "Notes"], [
            ["1 (solo)", "4 / 5", "A tight puzzle, good for learning"],
            ["2", "5 / 5", "The best experience: fast and tense"],
            ["3", "4 / 5", "Slightly more chaotic, still excellent"],
            ["4", "3 / 5", "The endgame drags with careful players"],
        ]),
        ("p", "The components deserve a mention. The lanterns are small wooden cylinders with translucent caps, and the player boards are double-layered so nothing slides around when someone bumps the table. The insert holds everything neatly, though it leaves no room for sleeved cards."),
        ("h2", "Verdict"),
        ("p", "Lanterns of Varrow is at its best with two players who enjoy a slow-building puzzle. At higher counts it is still a good game, but you may want to agree in advance to keep the last rounds moving. If that sounds like your group, it is easy to recommend."),
    ],
}

FLOOD_GAUGE = {
    "title": "How to read a river flood gauge, and what the numbers don't tell you",
    "byline": "By Elena Marsh, Cold Creek Watershed Council · March 3, 2026",
    "blocks": [
        ("p", "If you live near a river, you have probably seen a tall white board bolted to a bridge pier, marked in feet like an oversized ruler. That is a staff gauge, and together with the automatic sensors that publish readings online, it is the simplest way to know what the river is doing right now. This guide explains how to read one, how to interpret the online graphs, and where people most often go wrong."),
        ("h2", "Stage is not depth"),
        ("p", "The number on a gauge is called the stage. It is the height of the water surface above a fixed reference point chosen when the gauge was installed. It is not the depth of the river. A stage of four feet does not mean the water is four feet deep: on some rivers the channel bottom sits well below the gauge's zero, and on others the zero was set so that readings rarely go negative during dry summers. Comparing stage numbers between two different gauges is almost always meaningless."),
        ("h2", "Flood categories"),
        ("p", "For each official gauge, forecasters set thresholds based on what actually gets wet at different stages. For our local gauge at the Willow Street bridge, they look like this:"),
        ("table", ["Category", "Stage at Willow Street", "What happens"], [
            ["Action stage", "9.0 ft", "Water reaches the lower parking lot at Riverside Park"],
            ["Minor flood", "11.0 ft", "Riverside Trail closes; low spots on Mill Road flood"],
            ["Moderate flood", "14.5 ft", "Water enters basements on Canal Lane; Mill Road closes"],
            ["Major flood", "17.0 ft", "Several streets in the Flats neighborhood are under water"],
        ]),
        ("p", "These thresholds are the most useful numbers on the page, because they translate an abstract height into something you can picture. If you remember only one thing from this guide, remember where your own street falls in that table."),
        ("h2", "Reading the graph"),
        ("p", "Online gauge pages usually show a line graph of the past few days and, at forecast points, a dotted line extending into the future. A few habits will help you read it well:"),
        ("ul", [
            "Look at the slope, not just the latest value. A river at 8 feet and rising a foot an hour is more worrying than one at 10 feet and falling.",
            "Check the time of the last reading. Sensors sometimes stop reporting during the very storms you care about.",
            "Treat the forecast line as a best estimate, not a promise. Forecasts are revised as rain totals come in, sometimes by several feet.",
            "Look upstream. A gauge twenty miles upriver often shows a rise many hours before it reaches you.",
        ]),
        ("h2", "What the numbers don't tell you"),
        ("p", "A gauge measures one spot. Local flooding from storm drains backing up, small creeks overflowing or ice jams can happen while the main gauge looks unremarkable. Debris can lodge against a bridge and raise the water behind it. If you see water where it should not be, trust your eyes over the graph, and report it."),
        ("p", "Finally, never use a gauge reading to decide whether a flooded road is safe to drive through. Six inches of moving water can knock an adult off their feet, and a foot of it can float a car. The gauge can tell you the river is rising. It cannot tell you the road is still there."),
    ],
}

LIBRARY = {
    "title": "A short history of the Ashford Public Library",
    "byline": "From the local history room · Updated February 20, 2026",
    "blocks": [
        ("p", "The Ashford Public Library began in 1889 as a single bookcase in the back room of Hollis & Son's dry goods store on Main Street. Margaret Hollis, the owner's daughter, had collected about three hundred books from neighbors and lent them out on Saturday afternoons, recording each loan in a ledger that the library still keeps. The first entry, in her careful handwriting, records a seed catalogue and a book of sermons, borrowed by the same farmer on the same day."),
        ("h2", "A building of its own"),
        ("p", "By 1903 the collection had outgrown the store. A town meeting voted to buy a lot on Elm Street, and after a decade of bake sales, subscription drives and one memorable auction at which a retired fire horse was sold to a dairy farmer, the brick building most residents know today opened in the autumn of 1912. It had a reading room with tall east-facing windows, a children's corner, and a furnace that, according to the minutes of the board, “did its best.”"),
        ("p", "The library grew in fits and starts after that:"),
        ("ul", [
            "1931: the children's room moves to the basement, which turns out to be drier than anyone expected.",
            "1958: a bookmobile begins serving the farms north of the river.",
            "1976: a new wing adds space for periodicals and a community meeting room.",
            "1999: the card catalogue is retired and the first public computers are installed.",
            "2019: the old bookmobile route is revived with an electric van.",
        ]),
        ("h2", "The flood of 1955"),
        ("p", "The worst day in the library's history came in August 1955, when two days of rain sent the river over its banks and put four feet of water into the lower level. Volunteers formed a line up the stairs and passed books hand to hand to the reading room, saving most of the children's collection. Damp pages were interleaved with newspaper and laid out to dry on the floor of the high school gym for weeks. A few of those books, still slightly wavy, are on display near the front desk."),
        ("h2", "The library in numbers"),
        ("table", ["Year", "Items in the collection", "Registered borrowers"], [
            ["1912", "2,400", "310"],
            ["1955", "11,800", "1,450"],
            ["1999", "48,000", "5,200"],
            ["2025", "61,500", "7,900"],
        ]),
        ("p", "Today the library lends far more than books. Patrons can borrow telescopes, sewing machines, cake pans in unusual shapes and, since last spring, soil testing kits for gardeners. The ledger that Margaret Hollis started is now a database, but the idea behind it has not changed much: a town shares what it has, and writes down who has it, so that it comes back for the next person."),
        ("lines", ["Ashford Public Library", "14 Elm Street, Ashford", "Open Tuesday to Saturday, 10 a.m. to 6 p.m."]),
    ],
}

WATCHES = {
    "title": "A beginner's guide to mechanical watches",
    "byline": "By Jonas Whitfield · February 11, 2026",
    "blocks": [
        ("p", "In an age when every phone keeps perfect time, it is fair to ask why anyone would wear a watch that gains a few seconds a day and stops if you forget about it. The honest answer is that mechanical watches are not about accuracy. They are small, self-contained machines that run without a battery, and many people find something deeply satisfying in that. If you are curious but don't know where to start, this guide covers the basics."),
        ("h2", "How a mechanical watch keeps time"),
        ("p", "Every mechanical watch has the same four essential parts. A coiled spring, the mainspring, stores energy when you wind it. A series of gears, the gear train, carries that energy toward the hands. The escapement releases the energy in tiny, regular steps; it is what makes the ticking sound. And the balance wheel, a weighted wheel that swings back and forth on a fine hairspring, sets the rhythm of those steps. Most modern watches beat six or eight times per second, which is why their seconds hand appears to sweep rather than jump."),
        ("h2", "Manual or automatic?"),
        ("p", "A manual-wind watch needs you to turn the crown every day or two. An automatic watch contains a weighted rotor that spins as you move your wrist and winds the mainspring for you. Automatics are more convenient; manual watches are usually thinner and give you a small daily ritual, which many owners come to enjoy. Neither is better. It is a matter of taste."),
        ("h2", "Words you will keep seeing"),
        ("ul", [
            "Power reserve: how long the watch runs on a full wind, typically 38 to 80 hours.",
            "Complication: any function beyond hours, minutes and seconds, such as a date window or a stopwatch.",
            "Jewels: synthetic rubies used as low-friction bearings. More is not automatically better.",
            "Hacking seconds: a feature that stops the seconds hand when you pull out the crown, so you can set the time precisely.",
            "Water resistance: a rating in meters that describes a pressure test, not a depth you should dive to.",
        ]),
        ("h2", "What accuracy to expect"),
        ("p", "Mechanical watches drift. How much depends on the movement, how carefully it was adjusted, and even the position the watch rests in overnight. As a rough guide:"),
        ("table", ["Type of watch", "Typical daily deviation"], [
            ["Affordable automatic", "−20 to +40 seconds"],
            ["Mid-range, regulated movement", "−10 to +15 seconds"],
            ["Certified chronometer", "−4 to +6 seconds"],
            ["Quartz, for comparison", "about ±0.5 seconds"],
        ]),
        ("p", "If your watch runs a few seconds fast each day, that is normal, and many owners simply reset it once a week. A watch that suddenly gains several minutes a day may have become magnetized from sitting next to a speaker or a laptop, which a watchmaker can fix in a few minutes."),
        ("h2", "Looking after it"),
        ("p", "Have a mechanical watch serviced every five to eight years, or whenever its timekeeping changes noticeably. Avoid setting the date between about 9 p.m. and 3 a.m. on watches without a quick-set safety mechanism, since the date wheel is already engaged then. And wind a manual watch gently until you feel resistance; there is no need to force it."),
        ("p", "Most of all, wear it. A watch that lives in a drawer is a very small sculpture. One on your wrist is a machine doing exactly what it was built to do."),
    ],
}

PLUM_CAKE = {
    "title": "Grandpa Anton's plum cake, and the forty-year argument about cinnamon",
    "byline": "By Lena Vasquez-Hart · September 21, 2025",
    "blocks": [
        ("p", "Every September my grandfather bought more plums than any two people could eat. He carried them home from the market in a paper sack that always split on the stairs, and my grandmother said the same thing every year: “Anton, we are not a bakery.” Then she handed him the cake tin."),
        ("p", "The cake he made was the simplest thing in his repertoire: a soft, buttery base, halved plums pressed into the batter cut side up, and a thin layer of crumbs on top. The plums sink a little as it bakes and their juices run into the cake, so every slice is part cake and part jam. He served it warm, on the good plates, with nothing on the side, because in his view cream was for people who did not trust their plums."),
        ("p", "The only thing the family ever argued about was cinnamon. My grandfather used a pinch in the crumbs. My aunt insisted it belonged in the batter. My mother, quietly, used none at all. I have made it all three ways, and I have decided they are all correct, which I suspect is how the argument lasted forty years."),
        ("h2", "Ingredients"),
        ("ul", [
            "1 cup (125 g) all-purpose flour",
            "1 teaspoon baking powder",
            "a pinch of salt",
            "½ cup (115 g) butter, softened",
            "½ cup (100 g) sugar",
            "2 eggs",
            "1 teaspoon vanilla extract",
            "about 12 small Italian plums, halved and pitted",
        ]),
        ("lines", ["For the crumbs:", "3 tablespoons flour", "2 tablespoons sugar", "2 tablespoons cold butter", "a pinch of cinnamon, if you are on my grandfather's side"]),
        ("h2", "Method"),
        ("p", "Heat the oven to 350°F (175°C) and butter a 9-inch round tin. Whisk the flour, baking powder and salt together in a small bowl. In a larger bowl, beat the butter and sugar until pale and fluffy, about three minutes, then beat in the eggs one at a time and add the vanilla. Fold in the flour mixture until just combined. The batter will be thick; spread it evenly in the tin with the back of a spoon."),
        ("p", "Press the plum halves into the batter, cut side up, in tight circles. Rub the crumb ingredients together with your fingertips until they look like coarse sand, and scatter them over the top. Bake for 45 to 50 minutes, until the cake is golden and a skewer pushed into the batter between the plums comes out clean."),
        ("table", ["Plum variety", "Result"], [
            ["Italian prune plums", "Holds its shape and stays tart; the classic choice"],
            ["Large red plums", "Juicier; bake five minutes longer"],
            ["Greengages", "Sweeter and more delicate; skip the cinnamon"],
        ]),
        ("p", "Let the cake cool for at least twenty minutes before slicing, or the juice will run everywhere. My grandfather never waited, and neither, if I am honest, do I."),
    ],
}

BIRD_COUNT = {
    "title": "Field report: what 214 volunteers counted on Riverton's winter bird survey",
    "byline": "By Samira Holt, survey coordinator · January 27, 2026",
    "blocks": [
        ("p", "On the second Saturday of January, 214 volunteers spread out across Riverton with binoculars, clipboards and, in several cases, thermoses large enough to share. It was the twenty-second year of the city's winter bird survey, and the second-largest turnout we have ever had. Here is what they found, and what it might mean."),
        ("h2", "How the count works"),
        ("p", "The city is divided into 36 survey zones of about one square mile each. Teams of two to eight people walk a fixed route through their zone between 8 a.m. and noon, recording every bird they see or hear. Counting the same flock twice is the most common mistake, so teams note the direction a flock is moving and agree on a single number before writing it down. Feeder watchers, who count from their own windows, submit the highest number of each species seen at one time rather than a running total."),
        ("h2", "The headline numbers"),
        ("p", "Volunteers recorded 18,406 individual birds of 71 species, up from 66 species last year. The ten most numerous were:"),
        ("table", ["Species", "Count", "Change from 2025"], [
            ["European starling", "3,912", "−6%"],
            ["House sparrow", "2,877", "−3%"],
            ["Rock pigeon", "2,140", "+1%"],
            ["Canada goose", "1,655", "+18%"],
            ["American crow", "1,203", "+9%"],
            ["Dark-eyed junco", "964", "+22%"],
            ["Mallard", "811", "−4%"],
            ["American robin", "730", "+41%"],
            ["House finch", "688", "−12%"],
            ["Black-capped chickadee", "512", "+5%"],
        ]),
        ("p", "The robin count stands out. Robins are often thought of as a sign of spring, but many stay through the winter in cities, where fruiting trees and warmer pockets of air give them enough to eat. This year's mild December and a heavy crop of crabapples in the parks probably explain much of the jump."),
        ("h2", "Notable sightings"),
        ("ul", [
            "A pair of peregrine falcons at the grain elevator on the east waterfront, present for the fourth winter running.",
            "A single Townsend's solitaire in Linden Cemetery, the first ever recorded on our count.",
            "Eleven great blue herons along the canal, a record high.",
            "A barred owl roosting in a spruce behind the central library, photographed by a team that was, by their own admission, looking for coffee.",
        ]),
        ("h2", "What we can and can't conclude"),
        ("p", "A one-morning count is a snapshot, not a census. Weather, volunteer effort and luck all affect the totals, and a change of ten or twenty percent in a single year is usually within the noise. The real value of the survey is its length. Over twenty-two years a few patterns have become clear: house sparrows and starlings are slowly declining, while crows, geese and several species of hawk have become far more common in the city than they were when the survey began."),
        ("p", "We are grateful to everyone who took part, especially the teams who covered the industrial zones along the river, which are nobody's idea of a scenic morning walk but consistently turn up some of our most interesting birds. Next year's count is scheduled for January 9, 2027. New volunteers are always welcome. No experience is needed, just patience and warm socks."),
    ],
}

CAFE_NOTICE = {
    "title": "Open mic nights are back at Café Liégeois",
    "byline": "Water Street News · March 12, 2026",
    "blocks": [
        ("p", "After a winter break for repairs to the back room, Café Liégeois on Water Street is bringing back its Thursday open mic nights, starting March 19. The café’s owner, Renée Dubois, says the format will stay the same: a sign-up sheet at the counter from 6 p.m., performances from 7, and a strict limit of two songs or five minutes per performer, whichever comes first."),
        ("p", "“People sometimes ask if it’s only for musicians,” Dubois said. “It isn’t. We’ve had poets, a man who played the saw, a teenager who told the entire plot of a film she’d invented, and a retired dentist who did card tricks. The only rule is that you have to be kind to the person who went before you.”"),
        ("p", "The back room has a new floor, better lights and – finally – a piano that stays in tune for more than a week. The café will serve its usual menu until close, including the crêpes that regulars insist are the real reason anyone comes."),
        ("p", "Entry is free. Performers get a coffee on the house, and anyone under sixteen should come with an adult. The café asks people who plan to bring an amplifier to let the staff know in advance, since the room is small and the neighbors are patient, but not infinitely so."),
    ],
}


# ---------------------------------------------------------------------------
# Non-English pages (prose written for the project)
# ---------------------------------------------------------------------------

FR_MARKET = {
    "title": "Le marché couvert de Saint-Aubin rouvre après dix-huit mois de travaux",
    "byline": "Par Claire Bonnet · 7 mars 2026",
    "blocks": [
        ("p", "Après dix-huit mois de travaux, le marché couvert de Saint-Aubin a rouvert ses portes samedi matin, sous un ciel gris qui n’a pas découragé les habitants. Dès sept heures, une petite file s’était formée devant l’entrée principale, rue des Tanneurs, où le maire a coupé le ruban en compagnie des commerçants."),
        ("p", "Le bâtiment, construit en 1894, souffrait depuis longtemps d’infiltrations d’eau et d’une charpente fragilisée. Les travaux ont permis de refaire la toiture, de restaurer les grandes verrières et d’installer une ventilation plus discrète. Les étals, eux, ont été entièrement repensés : plus larges, mieux éclairés et équipés de vitrines réfrigérées pour les bouchers et les fromagers."),
        ("p", "« On a enfin de la lumière, et on n’a plus besoin de poser des seaux quand il pleut », résume en souriant Hélène Garnier, maraîchère au marché depuis plus de vingt ans. À côté d’elle, un jeune couple de boulangers s’installe pour la première fois : la mairie a réservé quatre emplacements à de nouveaux commerçants, avec un loyer réduit pendant deux ans."),
        ("p", "Pendant les travaux, le marché s’était replié sur la place de la Mairie, sous des tentes. Beaucoup de clients reconnaissent avoir pris d’autres habitudes entre-temps. Les commerçants comptent sur les animations prévues ce printemps, dégustations, ateliers pour les enfants et un concert le premier dimanche de chaque mois, pour les faire revenir."),
        ("p", "Le marché est ouvert du mardi au dimanche, de 7 h 30 à 13 h, ainsi que le vendredi soir jusqu’à 20 h."),
    ],
}

DE_HIKE = {
    "title": "Über den Kammweg zur Falkenhütte",
    "byline": "Tourenbericht von Jonas Albrecht · 15. Oktober 2025",
    "blocks": [
        ("p", "Der Kammweg zur Falkenhütte gehört zu den schönsten Tagestouren im oberen Lindtal, und trotzdem ist man hier selbst an Sommerwochenenden selten lange in Gesellschaft. Wir sind die Runde Anfang Oktober gegangen, an einem klaren, kühlen Tag, an dem sich der Nebel erst gegen zehn Uhr aus dem Tal hob."),
        ("p", "Los geht es am Wanderparkplatz oberhalb von Kirchberg. Die ersten eineinhalb Stunden führen durch lichten Buchenwald stetig bergauf, teils auf breitem Forstweg, teils auf schmalen Pfaden mit Wurzeln und losem Geröll. Feste Schuhe sind hier Pflicht. Am Sattel öffnet sich der Wald, und von dort verläuft der Weg fast eben über den Grat. Bei guter Sicht reicht der Blick im Süden bis zu den vergletscherten Gipfeln, im Norden liegt das Tal wie eine Landkarte unter einem."),
        ("p", "Die Falkenhütte selbst ist klein und einfach, wird aber mit viel Liebe bewirtschaftet. Es gibt Gerstensuppe, Brot mit Bergkäse aus der Gegend und einen Apfelstrudel, für den sich der Aufstieg allein schon lohnt. Unbedingt Bargeld mitnehmen, denn mit Karte kann man oben nicht bezahlen."),
        ("p", "Für den Abstieg empfehlen wir den Weg über die Lärchenwiese. Er ist etwas länger, aber deutlich weniger steil als der direkte Pfad und schont die Knie. Wer im Herbst unterwegs ist, sollte allerdings an die Zeit denken: Ab fünf Uhr wird es im Wald schnell dunkel."),
        ("ul", [
            "Strecke: 14 Kilometer, rund 850 Höhenmeter",
            "Gehzeit: etwa fünf Stunden ohne Pausen",
            "Einkehr: Falkenhütte, geöffnet von Mai bis Ende Oktober, montags Ruhetag",
        ]),
    ],
}

ES_GARDEN = {
    "title": "Un huerto comunitario da nueva vida a un solar abandonado",
    "byline": "Redacción El Vecindario · 2 de marzo de 2026",
    "blocks": [
        ("p", "Hace tres años, el solar de la calle Almendro era un terreno lleno de escombros, con una valla rota y un cartel de «Se vende» que nadie recordaba haber visto nuevo. Hoy, en ese mismo espacio crecen tomates, acelgas, habas y una higuera que ya empieza a dar sombra."),
        ("p", "El cambio empezó con una reunión de vecinos en la biblioteca del barrio. Marta Iglesias, maestra jubilada, propuso pedir al ayuntamiento permiso para usar el terreno mientras no tuviera otro destino. «Pensábamos que nos dirían que no, o que tardarían años en contestar», recuerda. La cesión llegó en cuatro meses."),
        ("p", "Ahora el huerto tiene treinta y dos parcelas, que se reparten por sorteo cada dos años, y una zona común donde se cultivan hierbas aromáticas para quien las necesite. Los sábados por la mañana hay talleres abiertos: compostaje, riego por goteo, cómo guardar semillas de un año para otro. Un colegio cercano tiene dos parcelas propias, y los niños de tercero las cuidan con una seriedad que sorprende a los mayores."),
        ("p", "No todo ha sido fácil. El agua es cara, el verano pasado desaparecieron varias herramientas y no faltan las discusiones sobre a quién le toca limpiar la zona común. Pero la lista de espera para conseguir una parcela ya supera las cincuenta familias."),
        ("p", "¿El próximo objetivo? Instalar depósitos para recoger el agua de lluvia del tejado del polideportivo vecino y, si el presupuesto lo permite, un pequeño invernadero para los meses de frío."),
    ],
}

ZH_GREENWAY = {
    "title": "清溪河畔绿道全线贯通，市民周末骑行有了新去处",
    "byline": "本报记者 林晓 · 2026年3月8日",
    "blocks": [
        ("p", "经过近两年的施工，清溪河畔绿道于本周六全线贯通。这条绿道全长约十八公里，从城东的老码头一直延伸到西郊的湿地公园，沿途经过六个社区和三座公园。"),
        ("p", "绿道分为步行道和骑行道两部分，中间用一排低矮的灌木隔开。施工方在沿线设置了十二处休息点，每处都有座椅、饮水机和自行车维修工具。在靠近小学的路段，步道还专门加宽，方便家长接送孩子。"),
        ("p", "开放当天，不少市民一早就来到河边。退休教师刘阿姨和几位老朋友约好一起散步，她说：“以前这里是一片杂草和堆放建筑材料的空地，晚上都不敢走。现在路灯亮了，河水也干净多了，我们每天都想来转一转。”"),
        ("p", "骑行爱好者小周则对路面质量赞不绝口。他表示，骑行道平整宽敞，标识清楚，比在马路上骑车安全得多。不过他也提出建议，希望在几个路口增加过街信号灯，避免骑行者和机动车抢行。"),
        ("p", "据了解，有关部门下一步计划在绿道沿线种植更多本地树种，并在湿地公园附近建设一个小型自然教育中心，向孩子们介绍河里的鱼类和鸟类。负责人表示，绿道建成只是第一步，如何维护好、利用好，还需要市民共同参与。"),
    ],
}

JA_BOOKSHOP = {
    "title": "駅前の小さな古本屋、五十年の歩み",
    "byline": "文・写真　佐藤みのり　2026年2月14日",
    "blocks": [
        ("p", "山あいの町、川原町の駅前に、古い木造の本屋がある。看板には「ふくろう書房」と書かれているが、文字はすっかりかすれていて、初めて訪れる人はなかなか気づかない。店主の森田さんは、この店を父親から受け継いで、今年でちょうど三十年になる。開店から数えると、もう五十年近い。"),
        ("p", "店の中は思ったより広く、天井まで届く棚に文庫本や古い雑誌、地元の郷土史がぎっしりと並んでいる。奥の棚には昔の時刻表や旅行案内が集められていて、鉄道好きの客が遠くからわざわざ探しに来るという。"),
        ("p", "「売れる本より、残しておきたい本のほうが多いんですよ」と森田さんは笑う。町の人が引っ越しや片付けのときに持ってくる本を、一冊ずつ手に取って確かめる。中には古い手紙や押し花がはさまっていることもある。そういうものは捨てずに箱にしまっておき、持ち主がわかれば返しているそうだ。"),
        ("p", "最近は、週末になると若い人の姿も増えてきた。インターネットで店のことを知り、電車に一時間ほど揺られて来るのだという。森田さんはそうした客のために、店の一角に小さな読書スペースを作った。温かいお茶を飲みながら、気に入った本をゆっくり読むことができる。"),
        ("p", "営業は午前十時から午後六時まで。水曜日は定休日。"),
    ],
}

RU_FERRY = {
    "title": "Паром через Сосновку снова работает",
    "byline": "Районные вести · 5 марта 2026 г.",
    "blocks": [
        ("p", "После трёх месяцев ремонта паром, который соединяет село Заречное с районным центром, снова вышел на линию. Для жителей правого берега это не просто удобство: ближайший мост находится в сорока километрах, и пока паром стоял, дорога в больницу, на рынок или в школу занимала почти полдня."),
        ("p", "Ремонт начался ещё в конце лета, когда при осмотре в корпусе обнаружили трещины. Старое судно решили не списывать, а восстановить: заменили часть обшивки, двигатель и навигационное оборудование. Теперь паром может перевезти за один рейс до восьми легковых машин и шестидесяти пассажиров."),
        ("p", "«Мы все эти месяцы ездили в объезд или просили соседей перевезти на лодке, — рассказывает Анна Петровна, медсестра районной поликлиники. — Сегодня утром впервые за долгое время доехала до работы за двадцать минут»."),
        ("p", "Паром ходит ежедневно с шести утра до девяти вечера, каждые сорок минут. Для школьников и пенсионеров проезд бесплатный. В администрации района обещают, что к следующему лету на обоих берегах появятся новые причалы с навесами, где можно будет переждать дождь."),
        ("p", "Капитан парома Сергей Волков работает на переправе уже двадцать два года. По его словам, река этой зимой спокойная, а вот весной, когда пойдёт лёд, придётся снова сделать перерыв, недели на две."),
    ],
}


# ---------------------------------------------------------------------------
# HTML rendering
# ---------------------------------------------------------------------------

def esc(s):
    return html.escape(s, quote=False)


def render_blocks(blocks, indent="      "):
    out = []
    for b in blocks:
        kind = b[0]
        if kind == "p":
            out.append(f"{indent}<p>{esc(b[1])}</p>")
        elif kind == "h2":
            out.append(f"{indent}<h2>{esc(b[1])}</h2>")
        elif kind == "ul":
            out.append(f"{indent}<ul>")
            out.extend(f"{indent}  <li>{esc(item)}</li>" for item in b[1])
            out.append(f"{indent}</ul>")
        elif kind == "table":
            header, rows = b[1], b[2]
            out.append(f"{indent}<table>")
            out.append(f"{indent}  <thead><tr>" + "".join(f"<th>{esc(c)}</th>" for c in header) + "</tr></thead>")
            out.append(f"{indent}  <tbody>")
            for row in rows:
                out.append(f"{indent}    <tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
            out.append(f"{indent}  </tbody>")
            out.append(f"{indent}</table>")
        elif kind == "lines":
            out.append(f"{indent}<p>" + "<br>\n".join(esc(line) for line in b[1]) + "</p>")
        else:
            raise ValueError(kind)
    return "\n".join(out)


def main_text(article):
    """The text a good extractor should return (used for word counts)."""
    parts = [article["title"], article["byline"]]
    for b in article["blocks"]:
        if b[0] in ("p", "h2"):
            parts.append(b[1])
        elif b[0] in ("ul", "lines"):
            parts.extend(b[1])
        elif b[0] == "table":
            parts.append(" ".join(b[1]))
            parts.extend(" ".join(r) for r in b[2])
    return "\n".join(parts)


def nav_list(links, cls="menu"):
    items = "".join(f'<li><a href="{href}">{esc(label)}</a></li>' for label, href in links)
    return f'<ul class="{cls}">{items}</ul>'


def link_list(links):
    return " ".join(f'<a href="{href}">{esc(label)}</a>' for label, href in links)


def head(title, charset_meta='<meta charset="utf-8">', lang="en", extra=""):
    return f"""<!DOCTYPE html>
<html lang="{lang}">
<head>
  {charset_meta}
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{esc(title)}</title>
  <link rel="stylesheet" href="/assets/site.css">
  <style>.cookie-banner{{position:fixed;bottom:0;left:0;right:0;background:#222;color:#eee;padding:1em}}.share a{{margin-right:.5em}}</style>
  <script>window.dataLayer=window.dataLayer||[];function track(){{dataLayer.push(arguments);}}track('pageview');</script>{extra}
</head>
"""


EN_COOKIE = ("We use cookies to remember your preferences and to understand how our site is used. You can change your choice at any time.",
             "Accept all", "Manage preferences")
EN_SHARE = ("Share this:", "Post", "Save", "Email", "Print")


def cookie_banner(site=None):
    text, accept, manage = (site or {}).get("cookie", EN_COOKIE)
    return f"""<div class="cookie-banner" id="cookie-consent" role="dialog" aria-label="Cookie consent">
  <p>{esc(text)}</p>
  <button type="button" class="accept">{esc(accept)}</button> <button type="button" class="manage">{esc(manage)}</button>
</div>"""


COOKIE_BANNER = cookie_banner()


def share_buttons(url, title, labels=EN_SHARE):
    q = esc(url)
    label, post, save, email, prnt = (esc(x) for x in labels)
    return f"""<div class="share" aria-label="Share">
        <span>{label}</span>
        <a href="https://social.example/share?u={q}">{post}</a>
        <a href="https://pinboard.example/add?url={q}">{save}</a>
        <a href="mailto:?subject={esc(title)}&amp;body={q}">{email}</a>
        <a href="javascript:window.print()">{prnt}</a>
      </div>"""


def comments_section(comments):
    if not comments:
        return ""
    parts = [f'<section class="comments" id="comments">\n    <h3>{len(comments)} comments</h3>']
    for name, when, text in comments:
        parts.append(f"""    <div class="comment">
      <p class="comment-meta"><b>{esc(name)}</b> · <time>{esc(when)}</time></p>
      <p>{esc(text)}</p>
      <a class="reply" href="#reply">Reply</a>
    </div>""")
    parts.append("""    <form class="comment-form" action="/comments" method="post">
      <h4>Leave a comment</h4>
      <label>Name <input name="name"></label>
      <label>Comment <textarea name="body"></textarea></label>
      <button type="submit">Post comment</button>
    </form>
  </section>""")
    return "\n".join(parts)


def semantic_page(site, url, article, comments=(), lang="en", charset_meta='<meta charset="utf-8">',
                  sidebar_title="Related posts", share=True, banner=True):
    """A modern CMS-style page: header/nav, article, aside, comments, footer."""
    return head(f"{article['title']} | {site['name']}", charset_meta, lang) + f"""<body class="post">
{cookie_banner(site) if banner else ''}
<header class="site-header">
  <a class="logo" href="/">{esc(site['name'])}</a>
  <p class="tagline">{esc(site['tagline'])}</p>
  <nav aria-label="Main">{nav_list(site['nav'])}</nav>
  <form class="search" action="/search"><input name="q" placeholder="{esc(site.get('search', 'Search'))}"><button>{esc(site.get('search', 'Search'))}</button></form>
</header>
<div class="breadcrumbs"><a href="/">{esc(site.get('home', 'Home'))}</a> &rsaquo; <a href="{site['section'][1]}">{esc(site['section'][0])}</a></div>
<main>
  <article>
    <header>
      <h1>{esc(article['title'])}</h1>
      <p class="byline">{esc(article['byline'])}</p>
    </header>
    <div class="entry-content">
{render_blocks(article['blocks'])}
    </div>
    <footer class="entry-footer">
      {share_buttons(url, article['title'], site.get('share', EN_SHARE)) if share else ''}
      <p class="tags">{esc(site.get('tags_label', 'Tags'))}: {link_list(site['tags'])}</p>
    </footer>
  </article>
  {comments_section(comments)}
</main>
<aside class="sidebar">
  <section class="related">
    <h3>{esc(sidebar_title)}</h3>
    {nav_list(site['related'], 'related-list')}
  </section>
  <section class="newsletter">
    <h3>{esc(site.get('newsletter_title', 'Newsletter'))}</h3>
    <p>{esc(site.get('newsletter', 'Get new posts by email. No spam, unsubscribe any time.'))}</p>
    <form action="/subscribe"><input name="email" type="email"><button>{esc(site.get('subscribe', 'Subscribe'))}</button></form>
  </section>
  <div class="ad-slot" data-slot="sidebar-1"><script>/* ad loader */</script></div>
</aside>
<footer class="site-footer">
  <nav aria-label="Footer">{nav_list(site['footer'], 'footer-links')}</nav>
  <p class="copyright">{esc(site['copyright'])}</p>
</footer>
<script src="/assets/app.js" defer></script>
</body>
</html>
"""


def divsoup_page(site, url, article, lang="en"):
    """An older, table-free but div-only layout (no semantic elements)."""
    return head(f"{site['name']} - {article['title']}", '<meta http-equiv="Content-Type" content="text/html; charset=utf-8">', lang) + f"""<body>
<div id="wrapper">
  <div id="top-bar">{link_list(site['topbar'])}</div>
  <div id="masthead"><a href="/"><img src="/img/logo.gif" alt="{esc(site['name'])}"></a></div>
  <div id="navigation">{nav_list(site['nav'], 'nav')}</div>
  <div id="gdpr-notice" class="notice">This website uses cookies. By continuing you accept our <a href="/privacy">privacy policy</a>. <a href="#" class="close">OK</a></div>
  <div id="content">
    <div class="story">
      <div class="story-headline"><h1>{esc(article['title'])}</h1></div>
      <div class="story-meta">{esc(article['byline'])}</div>
      <div class="story-body">
{render_blocks(article['blocks'])}
      </div>
      <div class="story-tools">{link_list([("Print this story", "#print"), ("Email to a friend", "#email"), ("Report an error", "/corrections")])}</div>
    </div>
    <div id="more-stories">
      <div class="box-title">{esc(site['more_title'])}</div>
      {nav_list(site['related'], 'more')}
    </div>
  </div>
  <div id="right-column">
    <div class="box"><div class="box-title">Most read</div>{nav_list(site['popular'], 'popular')}</div>
    <div class="box ad">Advertisement</div>
  </div>
  <div id="footer">{link_list(site['footer'])}<br>{esc(site['copyright'])}</div>
</div>
</body>
</html>
"""


# ---------------------------------------------------------------------------
# Sites (all fictional)
# ---------------------------------------------------------------------------

GAZETTE = {
    "name": "The Millbrook Gazette",
    "tagline": "News for Millbrook and the Harbor towns since 1921",
    "nav": [("Home", "/"), ("News", "/news/"), ("Town Council", "/council/"), ("Schools", "/schools/"), ("Sports", "/sports/"), ("Opinion", "/opinion/"), ("Obituaries", "/obituaries/"), ("Classifieds", "/classifieds/")],
    "section": ("News", "/news/"),
    "tags": [("transportation", "/tag/transportation/"), ("Harbor Street", "/tag/harbor-street/"), ("cycling", "/tag/cycling/")],
    "related": [("School board approves later start times", "/2026/03/school-start-times"), ("Ferry fares to rise by 25 cents in July", "/2026/02/ferry-fares"), ("Letters: the case for a second dog park", "/2026/02/letters-dog-park"), ("Photos: ice on Millbrook Pond", "/2026/01/photos-pond-ice")],
    "footer": [("About us", "/about/"), ("Contact the newsroom", "/contact/"), ("Advertise", "/advertise/"), ("Corrections", "/corrections/"), ("Privacy policy", "/privacy/"), ("Terms of use", "/terms/")],
    "copyright": "© 2026 Millbrook Gazette Media. All rights reserved.",
    "newsletter_title": "The Morning Brief",
    "newsletter": "The day's Millbrook headlines in your inbox at 6 a.m.",
}

TRICOUNTY = {
    "name": "Tri-County Daily",
    "topbar": [("Subscribe", "/subscribe"), ("e-Edition", "/e-edition"), ("Log in", "/login"), ("Weather: 48°F", "/weather")],
    "nav": [("Local", "/local"), ("Region", "/region"), ("Business", "/business"), ("Sports", "/sports"), ("Life", "/life"), ("Events", "/events")],
    "related": [("County fair adds a second weekend", "/region/fair-weekend"), ("Rail trail survey opens to public", "/region/rail-trail-survey"), ("Three candidates file for sheriff", "/local/sheriff-race")],
    "popular": [("Road work on Route 9 starts Monday", "/local/route-9"), ("High school robotics team heads to state", "/local/robotics"), ("Restaurant inspections: February", "/local/inspections")],
    "more_title": "More regional news",
    "footer": [("Contact", "/contact"), ("Careers", "/careers"), ("Privacy", "/privacy"), ("Cookie settings", "/cookies")],
    "copyright": "Copyright 2026 Tri-County Daily. Content syndicated from partner newspapers is used with permission.",
}

VALLEY_WIRE = {
    "name": "Valley Wire",
    "tagline": "Regional stories from our partner newsrooms",
    "nav": [("Latest", "/latest"), ("Transportation", "/topics/transportation"), ("Environment", "/topics/environment"), ("Housing", "/topics/housing"), ("About the Wire", "/about")],
    "section": ("Transportation", "/topics/transportation"),
    "tags": [("bike lanes", "/tags/bike-lanes"), ("Millbrook", "/tags/millbrook")],
    "related": [("Bus rapid transit study finds strong support", "/2026/03/brt-study"), ("Why small towns are redesigning their main streets", "/2026/02/main-streets"), ("Bridge inspections: what the ratings mean", "/2026/01/bridge-ratings")],
    "footer": [("Partner newsrooms", "/partners"), ("Republish our stories", "/republish"), ("Support the Wire", "/donate"), ("Privacy", "/privacy")],
    "copyright": "Valley Wire is a nonprofit news collaborative. © 2026",
    "newsletter_title": "Wire Weekly",
    "newsletter": "The best of the region's reporting, every Friday.",
}

CRUMB = {
    "name": "Crumb & Crust",
    "tagline": "A home baker's notebook",
    "nav": [("Recipes", "/recipes/"), ("Sourdough", "/sourdough/"), ("Techniques", "/techniques/"), ("Tags", "/tags/"), ("About", "/about/")],
    "section": ("Sourdough", "/sourdough/"),
    "tags": [("starter", "/tags/starter/"), ("fermentation", "/tags/fermentation/"), ("science", "/tags/science/")],
    "related": [("My everyday sourdough loaf, step by step", "/recipes/everyday-loaf/"), ("Reviving a starter after a month in the fridge", "/sourdough/reviving/"), ("Rye starters are different, and here's why", "/sourdough/rye/"), ("Five mistakes I made in my first year of baking", "/techniques/five-mistakes/")],
    "footer": [("About me", "/about/"), ("Contact", "/contact/"), ("Privacy", "/privacy/"), ("RSS", "/feed/")],
    "copyright": "© 2026 Crumb & Crust. Photos and words by Priya Raman.",
    "newsletter": "One new recipe a month, plus whatever is bubbling in my kitchen.",
}

SECOND_TURN = {
    "name": "Second Turn",
    "tagline": "Board game reviews for people with busy weeknights",
    "nav": [("Reviews", "/reviews/"), ("First impressions", "/first-impressions/"), ("Guides", "/guides/"), ("Podcast", "/podcast/"), ("Sign in", "/login")],
    "section": ("Reviews", "/reviews/"),
    "tags": [("strategy", "/tags/strategy/"), ("2-4 players", "/tags/2-4-players/"), ("solo mode", "/tags/solo/")],
    "related": [("The best two-player games under an hour", "/guides/two-player/"), ("First impressions: Salt Road", "/first-impressions/salt-road/"), ("How we score games", "/about/scoring/")],
    "footer": [("About", "/about/"), ("Review policy", "/about/policy/"), ("Contact", "/contact/"), ("Privacy", "/privacy/")],
    "copyright": "© 2026 Second Turn. Review copies are returned or donated after review.",
}

RIVERWATCH = {
    "name": "Cold Creek Watershed Council",
    "tagline": "Clean water, safe neighborhoods, healthy streams",
    "nav": [("About", "/about"), ("Flood safety", "/flood-safety"), ("Volunteer", "/volunteer"), ("Water quality data", "/data"), ("Donate", "/donate")],
    "section": ("Flood safety", "/flood-safety"),
    "tags": [("flooding", "/tags/flooding"), ("guides", "/tags/guides")],
    "related": [("Sign up for river level alerts", "/alerts"), ("Sandbag distribution points", "/flood-safety/sandbags"), ("Spring stream cleanup: April 18", "/events/cleanup")],
    "footer": [("Contact us", "/contact"), ("Board meetings", "/board"), ("Annual reports", "/reports"), ("Accessibility", "/accessibility")],
    "copyright": "Cold Creek Watershed Council is a volunteer-run nonprofit. © 2026",
    "newsletter_title": "River alerts",
    "newsletter": "Get a text when the Willow Street gauge passes action stage.",
}

LIBRARY_SITE = {
    "name": "Ashford Public Library",
    "tagline": "Free to all since 1889",
    "nav": [("Catalog", "/catalog"), ("Events", "/events"), ("Kids & Teens", "/kids"), ("Library of Things", "/things"), ("Local History", "/history"), ("My Account", "/account")],
    "section": ("Local History", "/history"),
    "tags": [("history", "/tags/history"), ("Ashford", "/tags/ashford")],
    "related": [("Hours and locations", "/hours"), ("Borrow a telescope", "/things/telescopes"), ("Oral history project: share your story", "/history/oral-history")],
    "footer": [("Hours", "/hours"), ("Board of trustees", "/board"), ("Careers", "/careers"), ("Policies", "/policies")],
    "copyright": "Ashford Public Library, 14 Elm Street, Ashford",
}

TICKTOCK = {
    "name": "Tick & Tock Journal",
    "tagline": "Watches explained, without the jargon",
    "nav": [("Guides", "/guides/"), ("Reviews", "/reviews/"), ("History", "/history/"), ("Glossary", "/glossary/")],
    "section": ("Guides", "/guides/"),
    "tags": [("beginners", "/tags/beginners/"), ("mechanical", "/tags/mechanical/")],
    "related": [("How to wind a watch without damaging it", "/guides/winding/"), ("What a watch service actually involves", "/guides/service/"), ("Glossary: 40 terms in plain English", "/glossary/")],
    "footer": [("About", "/about/"), ("Contact", "/contact/"), ("Privacy", "/privacy/")],
    "copyright": "© 2026 Tick & Tock Journal",
}

SUNDAY_TABLE = {
    "name": "Sunday Table",
    "tagline": "Family recipes and the stories behind them",
    "nav": [("Recipes", "/recipes/"), ("Stories", "/stories/"), ("Baking", "/baking/"), ("Seasonal", "/seasonal/"), ("Submit a recipe", "/submit/")],
    "section": ("Stories", "/stories/"),
    "tags": [("cake", "/tags/cake/"), ("plums", "/tags/plums/"), ("autumn", "/tags/autumn/")],
    "related": [("Aunt Rosa's apple strudel", "/stories/apple-strudel/"), ("The lemon bars that ended a feud", "/stories/lemon-bars/"), ("Baking with the fruit nobody wants", "/seasonal/ugly-fruit/")],
    "footer": [("About", "/about/"), ("Contact", "/contact/"), ("Privacy", "/privacy/")],
    "copyright": "© 2026 Sunday Table. Recipes shared by readers are printed with their permission.",
}

BIRD_CLUB = {
    "name": "Riverton Bird Club",
    "tagline": "Watching city birds together since 1987",
    "nav": [("Walks", "/walks"), ("Surveys", "/surveys"), ("Sightings", "/sightings"), ("Join", "/join")],
    "section": ("Surveys", "/surveys"),
    "tags": [("winter survey", "/tags/winter-survey"), ("results", "/tags/results")],
    "related": [("Beginner bird walk, every first Sunday", "/walks/beginners"), ("How to submit a sighting", "/sightings/how-to"), ("Spring migration calendar", "/surveys/migration")],
    "footer": [("Contact", "/contact"), ("Code of conduct", "/conduct"), ("Privacy", "/privacy")],
    "copyright": "© 2026 Riverton Bird Club",
}

WATER_STREET = {
    "name": "Water Street News",
    "tagline": "Neighborhood notes",
    "nav": [("News", "/news"), ("Events", "/events"), ("Food", "/food"), ("Contact", "/contact")],
    "section": ("Events", "/events"),
    "tags": [("music", "/tags/music"), ("cafés", "/tags/cafes")],
    "related": [("Spring street fair dates announced", "/news/street-fair"), ("New bakery opens on Pier Road", "/food/pier-road-bakery")],
    "footer": [("About", "/about"), ("Advertise", "/advertise")],
    "copyright": "© 2026 Water Street News",
}

FR_SITE = {
    "name": "L’Écho de Saint-Aubin", "tagline": "L’actualité de Saint-Aubin et de ses environs",
    "nav": [("Accueil", "/"), ("Actualités", "/actualites/"), ("Culture", "/culture/"), ("Sports", "/sports/"), ("Agenda", "/agenda/")],
    "section": ("Actualités", "/actualites/"), "home": "Accueil", "search": "Rechercher", "tags_label": "Mots-clés",
    "tags": [("commerce", "/mots-cles/commerce/"), ("patrimoine", "/mots-cles/patrimoine/")],
    "related": [("La piscine municipale fermée pour vidange", "/actualites/piscine/"), ("Le festival du livre revient en mai", "/culture/festival-livre/")],
    "footer": [("Mentions légales", "/mentions-legales/"), ("Contact", "/contact/"), ("Cookies", "/cookies/")],
    "copyright": "© 2026 L’Écho de Saint-Aubin", "newsletter_title": "Lettre d’information",
    "newsletter": "Recevez chaque semaine l’essentiel de l’actualité locale.", "subscribe": "S’abonner",
    "cookie": ("Nous utilisons des cookies pour mémoriser vos préférences et mesurer l’audience du site. Vous pouvez modifier votre choix à tout moment.", "Tout accepter", "Personnaliser"),
    "share": ("Partager :", "Publier", "Enregistrer", "E-mail", "Imprimer"),
}

DE_SITE = {
    "name": "Wanderzeit", "tagline": "Touren, Hütten und Wege",
    "nav": [("Start", "/"), ("Touren", "/touren/"), ("Hütten", "/huetten/"), ("Ausrüstung", "/ausruestung/"), ("Über uns", "/ueber-uns/")],
    "section": ("Touren", "/touren/"), "home": "Start", "search": "Suchen", "tags_label": "Schlagwörter",
    "tags": [("Tagestour", "/tag/tagestour/"), ("Hüttenwanderung", "/tag/huetten/")],
    "related": [("Rund um den Lindsee", "/touren/lindsee/"), ("Die zehn besten Herbsttouren", "/touren/herbst/")],
    "footer": [("Impressum", "/impressum/"), ("Datenschutz", "/datenschutz/"), ("Kontakt", "/kontakt/")],
    "copyright": "© 2026 Wanderzeit", "newsletter_title": "Newsletter",
    "newsletter": "Neue Touren einmal im Monat per E-Mail.", "subscribe": "Abonnieren",
    "cookie": ("Wir verwenden Cookies, um Ihre Einstellungen zu speichern und die Nutzung der Website auszuwerten. Sie können Ihre Auswahl jederzeit ändern.", "Alle akzeptieren", "Einstellungen"),
    "share": ("Teilen:", "Posten", "Merken", "E-Mail", "Drucken"),
}

ES_SITE = {
    "name": "El Vecindario", "tagline": "Noticias del barrio",
    "nav": [("Portada", "/"), ("Barrio", "/barrio/"), ("Cultura", "/cultura/"), ("Opinión", "/opinion/")],
    "section": ("Barrio", "/barrio/"), "home": "Portada", "search": "Buscar", "tags_label": "Etiquetas",
    "tags": [("huertos", "/etiqueta/huertos/"), ("vecinos", "/etiqueta/vecinos/")],
    "related": [("La biblioteca amplía su horario", "/barrio/biblioteca-horario/"), ("Fiestas de San Juan: programa completo", "/cultura/san-juan/")],
    "footer": [("Aviso legal", "/aviso-legal/"), ("Contacto", "/contacto/")],
    "copyright": "© 2026 El Vecindario", "newsletter_title": "Boletín",
    "newsletter": "Las noticias del barrio, cada viernes en tu correo.", "subscribe": "Suscribirse",
    "cookie": ("Usamos cookies para recordar tus preferencias y saber cómo se utiliza el sitio. Puedes cambiar tu elección en cualquier momento.", "Aceptar todas", "Configurar"),
    "share": ("Compartir:", "Publicar", "Guardar", "Correo", "Imprimir"),
}

ZH_SITE = {
    "name": "清溪晚报", "tagline": "本地新闻与生活服务",
    "nav": [("首页", "/"), ("本地", "/local/"), ("民生", "/life/"), ("文化", "/culture/"), ("图片", "/photos/")],
    "section": ("本地", "/local/"), "home": "首页", "search": "搜索", "tags_label": "标签",
    "tags": [("绿道", "/tag/lvdao/"), ("城市建设", "/tag/chengshi/")],
    "related": [("老城区改造进入第二阶段", "/local/laocheng/"), ("春季赏花地图发布", "/life/shanghua/")],
    "footer": [("关于我们", "/about/"), ("联系我们", "/contact/"), ("隐私政策", "/privacy/")],
    "copyright": "© 2026 清溪晚报 版权所有", "newsletter_title": "订阅", "newsletter": "每天早上推送本地要闻。", "subscribe": "订阅",
    "cookie": ("本网站使用Cookie来记住您的偏好并统计访问情况。您可以随时更改设置。", "全部接受", "管理设置"),
    "share": ("分享：", "转发", "收藏", "邮件", "打印"),
}

JA_SITE = {
    "name": "川原町だより", "tagline": "小さな町の暮らしと人",
    "nav": [("ホーム", "/"), ("まちの人", "/hito/"), ("お店", "/mise/"), ("イベント", "/event/")],
    "section": ("お店", "/mise/"), "home": "ホーム", "search": "検索", "tags_label": "タグ",
    "tags": [("古本", "/tag/furuhon/"), ("駅前", "/tag/ekimae/")],
    "related": [("川沿いの桜並木、今年の見ごろは", "/event/sakura/"), ("町の和菓子屋を訪ねて", "/mise/wagashi/")],
    "footer": [("このサイトについて", "/about/"), ("お問い合わせ", "/contact/")],
    "copyright": "© 2026 川原町だより", "newsletter_title": "メールマガジン", "newsletter": "新しい記事をお知らせします。", "subscribe": "登録",
    "cookie": ("当サイトでは、設定の保存とアクセス解析のためにCookieを使用しています。設定はいつでも変更できます。", "すべて許可", "設定を変更"),
    "share": ("シェア：", "投稿", "保存", "メール", "印刷"),
}

RU_SITE = {
    "name": "Районные вести", "tagline": "Новости Заречного района",
    "nav": [("Главная", "/"), ("Новости", "/news/"), ("Общество", "/society/"), ("Транспорт", "/transport/")],
    "section": ("Транспорт", "/transport/"), "home": "Главная", "search": "Поиск", "tags_label": "Теги",
    "tags": [("паром", "/tag/parom/"), ("транспорт", "/tag/transport/")],
    "related": [("Расписание автобусов на весну", "/transport/bus/"), ("В школе открыли новый спортзал", "/society/school/")],
    "footer": [("О редакции", "/about/"), ("Контакты", "/contacts/")],
    "copyright": "© 2026 Районные вести", "newsletter_title": "Рассылка", "newsletter": "Главные новости района раз в неделю.", "subscribe": "Подписаться",
    "cookie": ("Мы используем файлы cookie, чтобы запоминать ваши настройки и анализировать посещаемость сайта. Вы можете изменить выбор в любой момент.", "Принять все", "Настроить"),
    "share": ("Поделиться:", "Опубликовать", "Сохранить", "Почта", "Печать"),
}


# Comments (kept out of <article>; a good extractor drops them).
COMMENTS_BIKE = [
    ("mkowalski", "March 9, 2026 at 2:14 pm", "Rode it this morning with my daughter. The bus islands at Fulton are a big improvement, though a few drivers still don't know where to stop."),
    ("Harborside Neighbors", "March 9, 2026 at 5:40 pm", "Thanks to everyone who came to the meetings over the last two years. It took a long time, but it was worth it."),
    ("Gerald P.", "March 10, 2026 at 8:02 am", "Still think the loading zones are in the wrong place. Come talk to the shop owners."),
]
COMMENTS_GAME = [
    ("quietmeeple", "January 18, 2026", "Agree about the endgame. We started using a sand timer for the last round and it fixed it for us."),
    ("Rosalind", "January 19, 2026", "Is the solo mode worth it on its own? I mostly play alone these days."),
]
COMMENTS_GAUGE = [
    ("Tom from Canal Lane", "March 4, 2026", "The table with what floods at each stage is exactly what I needed. Printing it for the fridge."),
    ("E. Marsh", "March 4, 2026", "Thanks, Tom! The thresholds are reviewed every spring, so check back after April."),
]
COMMENTS_WATCH = [
    ("first_automatic", "February 12, 2026", "Mine gains about 15 seconds a day and I was convinced it was broken. Good to know that's normal."),
    ("Hal", "February 13, 2026", "The bit about setting the date late at night saved me from a repair bill, I think."),
]
COMMENTS_CAKE = [
    ("Marguerite", "September 22, 2025", "Cinnamon in the crumbs, always. Your grandfather was right."),
    ("D. Ochoa", "September 23, 2025", "Made this with the last plums from our tree and it disappeared in an evening."),
    ("bakes_on_sunday", "September 25, 2025", "Can I use frozen plums? Mine are already in the freezer."),
]
COMMENTS_BIRDS = [
    ("Nina (Zone 14)", "January 27, 2026", "Our team had the barred owl too, but we were not looking for coffee. We were looking for a bathroom."),
    ("Paul R.", "January 28, 2026", "Is there data by zone? I'd love to compare our block with the rest of the city."),
]


# ---------------------------------------------------------------------------
# Pages that are mostly boilerplate, spam, and a scraper mirror
# ---------------------------------------------------------------------------

def tag_index_page():
    tags = ["starter", "rye", "whole wheat", "focaccia", "bagels", "enriched dough", "lamination", "scoring",
            "hydration", "fermentation", "science", "troubleshooting", "equipment", "holiday baking", "flatbreads",
            "pizza", "crackers", "discard recipes"]
    counts = [14, 6, 9, 3, 2, 5, 4, 7, 8, 11, 4, 10, 6, 5, 3, 4, 2, 9]
    items = "\n".join(f'      <li><a href="/tags/{t.replace(" ", "-")}/">{esc(t)}</a> <span class="count">({n})</span></li>'
                      for t, n in zip(tags, counts))
    return head("Tags | Crumb & Crust") + f"""<body class="archive">
{COOKIE_BANNER}
<header class="site-header">
  <a class="logo" href="/">Crumb &amp; Crust</a>
  <nav aria-label="Main">{nav_list(CRUMB['nav'])}</nav>
</header>
<main>
  <h1>Tags</h1>
  <ul class="tag-cloud">
{items}
  </ul>
  <nav class="pagination"><a href="/tags/">1</a> <a href="/tags/page/2/">2</a> <a href="/tags/page/2/">Next »</a></nav>
</main>
<footer class="site-footer">
  <nav aria-label="Footer">{nav_list(CRUMB['footer'], 'footer-links')}</nav>
  <p class="copyright">{esc(CRUMB['copyright'])}</p>
</footer>
</body>
</html>
"""


def login_page():
    return head("Sign in | Second Turn") + f"""<body class="login">
<header class="site-header">
  <a class="logo" href="/">Second Turn</a>
  <nav aria-label="Main">{nav_list(SECOND_TURN['nav'])}</nav>
</header>
<main class="auth">
  <h1>Sign in</h1>
  <form action="/login" method="post">
    <input type="hidden" name="csrf" value="3f9a0c1e7b2d">
    <label for="email">Email address</label>
    <input id="email" name="email" type="email" autocomplete="username">
    <label for="password">Password</label>
    <input id="password" name="password" type="password" autocomplete="current-password">
    <label><input type="checkbox" name="remember"> Keep me signed in</label>
    <button type="submit">Sign in</button>
  </form>
  <p><a href="/login/forgot">Forgot your password?</a></p>
  <p>New here? <a href="/join">Create a free account</a></p>
</main>
<footer class="site-footer">
  <nav aria-label="Footer">{nav_list(SECOND_TURN['footer'], 'footer-links')}</nav>
  <p class="copyright">{esc(SECOND_TURN['copyright'])}</p>
</footer>
</body>
</html>
"""


def soft_404_page():
    return head("Page not found | The Millbrook Gazette") + f"""<body class="error404">
{COOKIE_BANNER}
<header class="site-header">
  <a class="logo" href="/">The Millbrook Gazette</a>
  <nav aria-label="Main">{nav_list(GAZETTE['nav'])}</nav>
  <form class="search" action="/search"><input name="q" placeholder="Search"><button>Search</button></form>
</header>
<main>
  <h1>Page not found</h1>
  <p>Sorry, we couldn't find that page. It may have moved.</p>
  <p><a href="/">Return to the home page</a></p>
</main>
<aside class="sidebar">
  <section class="related"><h3>Latest news</h3>{nav_list(GAZETTE['related'], 'related-list')}</section>
</aside>
<footer class="site-footer">
  <nav aria-label="Footer">{nav_list(GAZETTE['footer'], 'footer-links')}</nav>
  <p class="copyright">{esc(GAZETTE['copyright'])}</p>
</footer>
</body>
</html>
"""


def redirect_page(location):
    return f"""<html>
<head><title>301 Moved Permanently</title></head>
<body>
<h1>Moved Permanently</h1>
<p>The document has moved <a href="{location}">here</a>.</p>
</body>
</html>
"""


def spam_keyword_page():
    lines = [
        "Cheap watches best price buy now. Looking for cheap watches? Our cheap watches are the best cheap watches at the best price, buy now.",
        "Best price cheap watches, cheap watches best price, buy cheap watches now at best price. Cheap watches online best price buy now.",
        "Why buy cheap watches here? Because cheap watches best price buy now is what we do. Cheap watches for men, cheap watches for women, cheap watches best price.",
        "Buy now cheap watches. Best price guaranteed on cheap watches. Cheap watches cheap watches cheap watches best price buy now.",
    ]
    body = "\n".join(f"    <p>{esc(line)}</p>" for line in lines * 4)
    stuffing = " ".join(["cheap watches best price buy now"] * 20)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Cheap Watches Best Price Buy Now | Cheap Watches Best Price | Buy Cheap Watches Now</title>
<meta name="keywords" content="cheap watches, best price, buy now, cheap watches best price, watches cheap, best cheap watches, buy watches now">
<meta name="description" content="Cheap watches best price buy now. Best cheap watches at the best price. Buy now.">
</head>
<body>
<div class="top"><a href="/">CHEAP WATCHES</a> | <a href="/cheap-watches">Cheap Watches</a> | <a href="/best-price">Best Price</a> | <a href="/buy-now">Buy Now</a></div>
<div class="content">
    <h1>Cheap Watches Best Price Buy Now</h1>
{body}
    <p style="color:#fff;font-size:2px">{stuffing}</p>
    <p><a href="/buy-now">BUY NOW</a></p>
</div>
<div class="footer"><a href="/cheap-watches-1">cheap watches 1</a> <a href="/cheap-watches-2">cheap watches 2</a> <a href="/cheap-watches-3">cheap watches 3</a></div>
</body>
</html>
"""


def spam_links_page():
    anchors = ["fast loans today", "casino bonus codes", "replica watches", "buy followers cheap", "weight loss pills",
               "cheap flights deals", "crypto doubler", "essay writing service", "free gift cards", "best vpn deals",
               "cheap hotel rooms", "car insurance quotes", "online pharmacy", "win big now"]
    items = "\n".join(f'  <li><a href="https://{a.replace(" ", "-")}.test/">{esc(a)}</a></li>' for a in anchors)
    return f"""<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Best Links Directory - Top Sites 2026</title></head>
<body>
<h1>Top Sites Directory</h1>
<ul class="links">
{items}
</ul>
<p><a href="/submit">Submit your site</a> | <a href="/page/2">Next page</a></p>
</body>
</html>
"""


def spam_caps_page():
    return """<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>MEGA FLASH SALE!!!</title></head>
<body style="background:yellow">
<center>
<h1>HUGE FLASH SALE!!! 90% OFF EVERYTHING!!!</h1>
<p><b>LIMITED TIME ONLY!!! CLICK HERE NOW!!! FREE SHIPPING!!!</b></p>
<p><a href="/deal"><font size="7" color="red">BUY NOW!!!</font></a></p>
</center>
</body>
</html>
"""


def spam_seo_page():
    paras = [
        "Home insurance is the best insurance for your home when you want the best home insurance for homes in 2026. In this home insurance guide we explain home insurance best practices so you can find the best home insurance and save on home insurance today.",
        "Why is home insurance important for home insurance? Because homes need insurance and insurance needs homes. The best home insurance quotes 2026 give you the best home insurance coverage for your home, which is why home insurance companies offer home insurance.",
        "Top 10 home insurance tips: 1. Get home insurance. 2. Compare home insurance. 3. Buy the best home insurance. Cheap home insurance near me is the number one home insurance search, so this home insurance article is about cheap home insurance near me.",
        "In conclusion, home insurance is insurance for your home. Click the button below to get your free home insurance quote now and start saving on the best home insurance 2026.",
    ]
    body = "\n".join(f"  <p>{esc(p)}</p>" for p in paras)
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Best Home Insurance 2026 Guide - Home Insurance Best Home Insurance Quotes</title></head>
<body>
<div id="header"><a href="/">SEO Articles Hub</a></div>
<div class="post">
  <h1>Best Home Insurance 2026: The Ultimate Home Insurance Guide</h1>
{body}
  <p><a class="btn" href="/go/quote">GET YOUR FREE QUOTE</a></p>
</div>
<div class="related">Related: <a href="/car-insurance-best-2026">car insurance best 2026</a> <a href="/life-insurance-best-2026">life insurance best 2026</a> <a href="/pet-insurance-best-2026">pet insurance best 2026</a></div>
</body>
</html>
"""


def mirror_page(url, article):
    """A scraper site that copied the article body verbatim into its own layout."""
    return head(f"{article['title']} - RecipeMirror") + f"""<body>
<div id="top-ad" class="ad-banner"><a href="https://ads.example.net/click?id=1">Advertisement</a></div>
<div class="site-title"><a href="/">RecipeMirror</a> <span>Every recipe on the web, in one place</span></div>
<div class="menu">{link_list([("Home", "/"), ("Breads", "/c/breads"), ("Cakes", "/c/cakes"), ("Trending", "/trending")])}</div>
<div class="layout">
  <div class="post-content">
    <h1>{esc(article['title'])}</h1>
    <p class="byline">{esc(article['byline'])}</p>
{render_blocks(article['blocks'], '    ')}
  </div>
  <div class="widgets">
    <div class="widget"><h4>Trending recipes</h4>{nav_list([("Ten-minute garlic noodles", "/r/garlic-noodles"), ("No-knead olive bread", "/r/olive-bread"), ("Brown butter cookies", "/r/brown-butter-cookies")], 'trending')}</div>
    <div class="widget ad-box">Sponsored</div>
  </div>
</div>
<div class="bottom">RecipeMirror collects recipes from around the web. {link_list([("DMCA", "/dmca"), ("Contact", "/contact")])}</div>
</body>
</html>
"""


def near_dup(article, byline, old, new):
    """A syndicated copy: different date line and one sentence changed."""
    blocks = []
    hits = 0
    for b in article["blocks"]:
        if b[0] == "p" and old in b[1]:
            b = ("p", b[1].replace(old, new))
            hits += 1
        blocks.append(b)
    assert hits == 1, old
    return {"title": article["title"], "byline": byline, "blocks": blocks}


# ---------------------------------------------------------------------------
# Binary payloads
# ---------------------------------------------------------------------------

def gzip_bytes(data):
    """gzip with a fixed header (mtime=0, no name, OS=255) for reproducibility."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = co.compress(data) + co.flush()
    header = b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + b"\x02\xff"
    return header + raw + struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)


def tiny_png():
    """A valid 16x16 RGB PNG: a small blue-to-green gradient."""
    w = h = 16
    raw = b"".join(b"\x00" + b"".join(bytes((20, 60 + x * 10, 200 - y * 8)) for x in range(w)) for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def tiny_pdf():
    """A minimal one-page PDF with a correct xref table."""
    stream = b"BT /F1 18 Tf 72 720 Td (Ashford Public Library - Annual Report 2025) Tj ET"
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


# ---------------------------------------------------------------------------
# Page list. Order matters: originals come before their duplicates, so
# exact dedup keeps the first copy it sees.
# ---------------------------------------------------------------------------

def build_pages():
    P = []

    def add(url, html_text=None, *, kind, lang, outcome, charset="utf-8", http_charset=True,
            body=None, content_type="text/html", status="200 OK", chunked=False, gzip_body=False,
            metadata=False, extra_headers=(), words=None):
        if body is None:
            # Characters the legacy charset lacks (the footer's © in GBK and
            # Shift_JIS) become numeric references, as real CMSes do.
            body = html_text.encode(charset, errors="xmlcharrefreplace")
        P.append(dict(url=url, body=body, kind=kind, lang=lang, outcome=outcome,
                      charset=charset if content_type == "text/html" else None,
                      http_charset=http_charset, content_type=content_type, status=status,
                      chunked=chunked, gzip_body=gzip_body, metadata=metadata,
                      extra_headers=list(extra_headers), words=words))

    def wc(article):
        return len(main_text(article).split())

    g = "https://www.millbrook-gazette.example"
    bike_url = g + "/2026/03/harbor-street-bike-lanes-open"
    add(bike_url, semantic_page(GAZETTE, bike_url, BIKE_LANES, COMMENTS_BIKE),
        kind="article (original of a syndicated story)", lang="en", outcome="kept", words=wc(BIKE_LANES))
    add(g + "/bike-lanes", redirect_page(bike_url), kind="301 redirect", lang="en", status="301 Moved Permanently",
        extra_headers=[("Location", bike_url)], outcome="dropped: too short (length filter)", words=5)

    crumb_url = "https://crumbandcrust.example.com/sourdough/whats-happening-inside-your-starter/"
    add(crumb_url, semantic_page(CRUMB, crumb_url, SOURDOUGH),
        kind="article", lang="en", outcome="kept", words=wc(SOURDOUGH))

    game_url = "https://tabletop.example.org/reviews/lanterns-of-varrow/"
    add(game_url, semantic_page(SECOND_TURN, game_url, BOARD_GAME, COMMENTS_GAME),
        kind="article, Transfer-Encoding: chunked", lang="en", chunked=True, outcome="kept", words=wc(BOARD_GAME))

    gauge_url = "https://riverwatch.example/flood-safety/how-to-read-a-river-gauge"
    add(gauge_url, semantic_page(RIVERWATCH, gauge_url, FLOOD_GAUGE, COMMENTS_GAUGE, sidebar_title="More from the council"),
        kind="article", lang="en", outcome="kept", words=wc(FLOOD_GAUGE))

    lib_url = "https://ashford-library.example.org/history/our-story"
    add(lib_url, semantic_page(LIBRARY_SITE, lib_url, LIBRARY, share=False, sidebar_title="At the library"),
        kind="article, Content-Encoding: gzip", lang="en", gzip_body=True, outcome="kept", words=wc(LIBRARY))

    watch_url = "https://tickandtock.example.com/guides/mechanical-watches-for-beginners/"
    add(watch_url, semantic_page(TICKTOCK, watch_url, WATCHES, COMMENTS_WATCH),
        kind="article", lang="en", outcome="kept", words=wc(WATCHES))

    cake_url = "https://kitchen.example.net/stories/grandpa-antons-plum-cake/"
    add(cake_url, semantic_page(SUNDAY_TABLE, cake_url, PLUM_CAKE, COMMENTS_CAKE, sidebar_title="More family recipes"),
        kind="article (recipe)", lang="en", outcome="kept", words=wc(PLUM_CAKE))

    bird_url = "https://birds.example.org/surveys/2026-winter-count-report"
    add(bird_url, semantic_page(BIRD_CLUB, bird_url, BIRD_COUNT, COMMENTS_BIRDS, sidebar_title="Club news"),
        kind="article (+ WARC metadata record)", lang="en", metadata=True, outcome="kept", words=wc(BIRD_COUNT))

    cafe_url = "https://waterstreet.example.com/events/open-mic-returns"
    add(cafe_url, semantic_page(WATER_STREET, cafe_url, CAFE_NOTICE, charset_meta='<meta charset="windows-1252">'),
        kind="short article", lang="en", charset="windows-1252", outcome="kept", words=wc(CAFE_NOTICE))

    tc_url = "https://news.example.net/region/2026/03/10/millbrook-bike-lanes"
    tc_article = near_dup(BIKE_LANES, "By Dana Okafor, Millbrook Gazette · Published March 10, 2026",
                          "“Ask me again in November,” he said.", "“Check back with me in November,” he said.")
    add(tc_url, divsoup_page(TRICOUNTY, tc_url, tc_article),
        kind="near-duplicate (syndicated copy 1)", lang="en",
        outcome="kept (near-duplicate: exact dedup does not catch it)", words=wc(tc_article))

    fr_url = "https://lechodesaintaubin.example/actualites/2026/03/marche-couvert-reouverture/"
    add(fr_url, semantic_page(FR_SITE, fr_url, FR_MARKET, lang="fr", sidebar_title="À lire aussi"),
        kind="article", lang="fr", outcome="kept (lang=fr)", words=wc(FR_MARKET))

    add("https://crumbandcrust.example.com/tags/", tag_index_page(),
        kind="boilerplate (tag index)", lang="en", outcome="dropped: too short (length filter)", words=None)

    add("https://cheap-watches-outlet.test/cheap-watches-best-price", spam_keyword_page(),
        kind="spam (keyword stuffing)", lang="en",
        outcome="kept by the default pipeline (long and unique); a repetition/quality filter would drop it", words=None)

    de_url = "https://wanderzeit.example/touren/kammweg-falkenhuette/"
    add(de_url, semantic_page(DE_SITE, de_url, DE_HIKE, lang="de", sidebar_title="Weitere Touren"),
        kind="article", lang="de", outcome="kept (lang=de)", words=wc(DE_HIKE))

    vw_url = "https://wire.example.org/2026/03/11/harbor-street-bike-lanes"
    vw_article = near_dup(BIKE_LANES, "Dana Okafor / Millbrook Gazette · Mar 11, 2026",
                          "The project cost $3.1 million, about two-thirds of which came from a state grant for safer streets.",
                          "The project cost $3.1 million, roughly two-thirds of it covered by a state safe-streets grant.")
    add(vw_url, semantic_page(VALLEY_WIRE, vw_url, vw_article, sidebar_title="More from the Wire", banner=False),
        kind="near-duplicate (syndicated copy 2)", lang="en",
        outcome="kept (near-duplicate: exact dedup does not catch it)", words=wc(vw_article))

    add("https://tabletop.example.org/login", login_page(),
        kind="boilerplate (login form)", lang="en", outcome="dropped: too short (length filter)")

    es_url = "https://elvecindario.example/barrio/huerto-calle-almendro/"
    add(es_url, semantic_page(ES_SITE, es_url, ES_GARDEN, lang="es",
                              charset_meta='<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">',
                              sidebar_title="Más noticias"),
        kind="article", lang="es", charset="iso-8859-1", outcome="kept (lang=es)", words=wc(ES_GARDEN))

    mirror_url = "https://recipes-mirror.example.net/copy/whats-happening-inside-your-sourdough-starter"
    add(mirror_url, mirror_page(mirror_url, SOURDOUGH),
        kind="exact duplicate of the sourdough article (scraper mirror)", lang="en",
        outcome="dropped: exact duplicate (dedup)", words=wc(SOURDOUGH))

    add("https://best-links-directory.test/", spam_links_page(),
        kind="spam (link list)", lang="en", outcome="dropped: too short (length filter)")

    zh_url = "https://qingxi-news.example/local/2026/0308/lvdao.html"
    add(zh_url, semantic_page(ZH_SITE, zh_url, ZH_GREENWAY, lang="zh-CN", charset_meta="", sidebar_title="相关阅读"),
        kind="article", lang="zh", charset="gbk", outcome="kept (lang=zh)", words=None)

    add(g + "/2026/01/council-agenda-preview", soft_404_page(),
        kind="boilerplate (soft 404, HTTP 200)", lang="en", outcome="dropped: too short (length filter)")

    add("https://mega-deals.test/flash-sale", spam_caps_page(),
        kind="spam (ALL-CAPS promotion)", lang="en", outcome="dropped: too short (length filter)")

    ja_url = "https://kawaharamachi.example/mise/fukurou-shobou.html"
    add(ja_url, semantic_page(JA_SITE, ja_url, JA_BOOKSHOP, lang="ja", charset_meta='<meta charset="shift_jis">',
                              sidebar_title="関連記事"),
        kind="article (charset only in <meta>)", lang="ja", charset="shift_jis", http_charset=False,
        outcome="kept (lang=ja)", words=None)

    add(g + "/static/img/logo.png", body=tiny_png(), content_type="image/png",
        kind="non-HTML (image/png)", lang="-", outcome="skipped by the reader (not HTML)")

    ru_url = "https://rayonnye-vesti.example/transport/parom-sosnovka"
    add(ru_url, semantic_page(RU_SITE, ru_url, RU_FERRY, lang="ru", charset_meta="", sidebar_title="Читайте также"),
        kind="article", lang="ru", charset="windows-1251", outcome="kept (lang=ru)", words=wc(RU_FERRY))

    add("https://seo-articles-hub.test/best-home-insurance-2026-guide", spam_seo_page(),
        kind="spam (SEO word salad)", lang="en",
        outcome="kept by the default pipeline (long enough, unique); a quality filter would drop it")

    add("https://ashford-library.example.org/files/annual-report-2025.pdf", body=tiny_pdf(), content_type="application/pdf",
        kind="non-HTML (application/pdf)", lang="-", outcome="skipped by the reader (not HTML)")
    return P


# ---------------------------------------------------------------------------
# WARC writing
# ---------------------------------------------------------------------------

def record_id(kind, uri):
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, kind + ':' + uri)}>"


def sha1_b32(data):
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode()


def warc_date(i):
    return (CRAWL_START + datetime.timedelta(seconds=7 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")


def http_date(i):
    return (CRAWL_START + datetime.timedelta(seconds=7 * i)).strftime("%a, %d %b %Y %H:%M:%S GMT")


def warc_record(headers, block):
    head = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    head += f"Content-Length: {len(block)}\r\n\r\n"
    return gzip_bytes(head.encode("utf-8") + block + b"\r\n\r\n")


def chunk_body(body, size=2048):
    out = b""
    for i in range(0, len(body), size):
        piece = body[i:i + size]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n\r\n"


def http_response(page, i):
    body = page["body"]
    ctype = page["content_type"]
    if ctype == "text/html" and page["http_charset"]:
        ctype += "; charset=" + page["charset"]
    headers = [("Date", http_date(i)), ("Server", "nginx"), ("Content-Type", ctype)]
    if page["gzip_body"]:
        body = gzip_bytes(body)
        headers.append(("Content-Encoding", "gzip"))
        headers.append(("Vary", "Accept-Encoding"))
    if page["chunked"]:
        body = chunk_body(body)
        headers.append(("Transfer-Encoding", "chunked"))
    else:
        headers.append(("Content-Length", str(len(body))))
    headers += page["extra_headers"]
    headers += [("Cache-Control", "max-age=300"), ("Connection", "close")]
    head = f"HTTP/1.1 {page['status']}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("latin-1"), body


def http_request(url):
    rest = url.split("://", 1)[1]
    host, _, path = rest.partition("/")
    return (f"GET /{path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n"
            "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
            "Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n").encode("latin-1")


def build_warc(pages):
    out = []
    info_id = record_id("warcinfo", "sample.warc.gz")
    info = ("software: refinery sample generator (crates/cli/sample/generate.py)\r\n"
            "format: WARC File Format 1.0\r\n"
            "isPartOf: refinery-demo-sample\r\n"
            "description: A small synthetic crawl for `refinery demo`. All pages are fictional and were written for the refinery project.\r\n"
            f"http-header-user-agent: {USER_AGENT}\r\n"
            "robots: obey\r\n").encode("utf-8")
    out.append(warc_record([("WARC-Type", "warcinfo"), ("WARC-Date", warc_date(0)),
                            ("WARC-Filename", "sample.warc.gz"), ("WARC-Record-ID", info_id),
                            ("Content-Type", "application/warc-fields")], info))
    for i, page in enumerate(pages, 1):
        url = page["url"]
        resp_id = record_id("response", url)
        date = warc_date(i)
        ip = f"192.0.2.{10 + i}"
        req = http_request(url)
        out.append(warc_record([
            ("WARC-Type", "request"), ("WARC-Date", date), ("WARC-Record-ID", record_id("request", url)),
            ("WARC-Target-URI", url), ("WARC-IP-Address", ip), ("WARC-Warcinfo-ID", info_id),
            ("WARC-Concurrent-To", resp_id), ("WARC-Block-Digest", sha1_b32(req)),
            ("Content-Type", "application/http; msgtype=request")], req))
        head, body = http_response(page, i)
        block = head + body
        out.append(warc_record([
            ("WARC-Type", "response"), ("WARC-Date", date), ("WARC-Record-ID", resp_id),
            ("WARC-Target-URI", url), ("WARC-IP-Address", ip), ("WARC-Warcinfo-ID", info_id),
            ("WARC-Block-Digest", sha1_b32(block)), ("WARC-Payload-Digest", sha1_b32(body)),
            ("WARC-Identified-Payload-Type", page["content_type"]),
            ("Content-Type", "application/http; msgtype=response")], block))
        if page["metadata"]:
            meta = ("via: https://birds.example.org/surveys/\r\n"
                    "hopsFromSeed: L\r\n"
                    "fetchTimeMs: 212\r\n"
                    "charset-detected: UTF-8\r\n").encode("utf-8")
            out.append(warc_record([
                ("WARC-Type", "metadata"), ("WARC-Date", date), ("WARC-Record-ID", record_id("metadata", url)),
                ("WARC-Target-URI", url), ("WARC-Warcinfo-ID", info_id), ("WARC-Concurrent-To", resp_id),
                ("WARC-Block-Digest", sha1_b32(meta)), ("Content-Type", "application/warc-fields")], meta))
    return b"".join(out)


# ---------------------------------------------------------------------------
# sample.jsonl: already-extracted web text
# ---------------------------------------------------------------------------

TULIPS = """Tulips are the only cut flowers I know that keep growing after you put them in a vase. The stems can stretch another inch or two, and because they also bend toward the light, a neat bouquet on Monday can look like a tangle of green question marks by Thursday.

A few things help. Trim the stems at an angle, wrap the bunch tightly in newspaper, and stand it in cool water for an hour or two before arranging. The paper holds the stems straight while they drink. Use a tall vase that supports most of the stem, and keep the water shallow and cold. Tulips are thirsty, so top it up every day.

Turn the vase a quarter turn each morning so the flowers don't all lean toward the window, and keep them away from the fruit bowl. Ripening fruit gives off ethylene gas, which makes the petals drop sooner.

Some people swear by pricking the stem just below the flower head with a pin. I have tried it and can't say it made much difference, but it does no harm either."""

COMPOST = """You don't need a garden to compost. A lidded bin under the sink, a bag of shredded cardboard and a little patience are enough to turn a household's vegetable scraps into something a balcony plant will love.

The simplest method for small spaces is a worm bin. Red worms live happily in a plastic tub with air holes, a bed of damp shredded paper, and a steady supply of fruit and vegetable peelings. A healthy bin does not smell. If yours starts to, you are adding food faster than the worms can eat it, or the bedding is too wet; add more dry paper and hold back on scraps for a week.

Leave out meat, dairy and oily food, and go easy on citrus peel. Coffee grounds, tea leaves, crushed eggshells and stale bread are all welcome in moderation.

After three or four months, push the finished compost to one side of the bin and add fresh bedding and food to the other. Within a couple of weeks most of the worms will have moved over to the food, and you can scoop out the dark, crumbly compost they left behind."""


def jsonl_records():
    R = []

    def rec(n, url, date, text=None, **extra):
        obj = {"id": f"sample-{n:04d}"}
        if text is not None:
            obj["text"] = text
        obj["url"] = url
        obj["date"] = date
        obj.update(extra)
        R.append((json.dumps(obj, ensure_ascii=False), text is None, "missing text field" if text is None else None))

    rec(1, "https://www.gardenpath.example.com/blog/keeping-tulips-upright", "2026-01-12", TULIPS)
    rec(2, "https://notes.example.org/2026/01/first-year-with-bees", "2026-01-15", """I picked up my first colony last May, a small cardboard box that hummed on the passenger seat all the way home. Twelve months later, the most important thing I have learned is that beekeeping is mostly watching.

In the first weeks I opened the hive far too often. Every inspection sets a colony back a little, because the bees have to repair the seals you break and recover the warmth you let out. An experienced keeper in our local club told me to decide what question I was trying to answer before lifting the lid. Is the queen laying? Do they have room? Are they bringing in food? If I couldn't name the question, I left them alone.

The second lesson was that the bees are not interested in my schedule. A cold, wet June meant almost no honey, and I had to feed them sugar syrup in July, which felt like a failure at the time. It wasn't. It was just a bad June.

By late autumn the colony was strong, heavy with stores, and busy on every mild afternoon. I took a single jar of honey from them in September. It tasted of clover and, faintly, of the lime trees on our street. It was the most expensive jar of honey I have ever eaten, and I would do it all again.""")
    rec(3, "https://www.fixitfriday.example.com/plumbing/dripping-faucet", "2026-01-16", """A dripping faucet wastes more water than most people expect: a drop every second adds up to thousands of gallons a year. The good news is that the most common cause, a worn washer or cartridge, is a repair most people can manage in under an hour with a screwdriver and an adjustable wrench.

Start by turning off the water supply under the sink and opening the faucet to drain what is left in the line. Put a towel in the sink so small parts can't disappear down the drain. Then remove the handle; there is usually a screw hidden under a decorative cap on the top or side.

On an older compression faucet you will find a stem with a rubber washer at the bottom. If the washer is cracked, flattened or hard, replace it with one of the same size. On newer single-handle faucets the whole cartridge usually comes out in one piece. Take it with you to the hardware store so you can match it exactly.

Reassemble everything in reverse order, turn the water back on slowly, and check for leaks. If the drip continues, the valve seat itself may be worn, and that is the point at which calling a plumber starts to make sense.""")
    rec(4, "https://www.fixitfriday.example.com/newsletter", "2026-01-16", "Click here to subscribe to our newsletter.")
    rec(5, "https://www.slowtravel.example.net/stories/night-train-to-the-coast", "2026-01-20", """The night train leaves the capital at ten past eleven, and for the first hour nobody sleeps. People unpack sandwiches, argue softly about which bunk is whose, and stand in the corridor watching the last suburbs slide past. Then the lights dim, the conductor makes his final round, and the carriage settles into the long rocking rhythm that makes sleeper trains worth taking.

I shared a compartment with a retired schoolteacher on her way to visit her grandson and a young man carrying a cello case he refused to put on the luggage rack. We talked for a while about nothing in particular. Around one in the morning the train stopped for twenty minutes at a station whose name I never saw, just a single lamp and a cat on the platform.

I woke at dawn to a grey sea on the left side of the train and a line of fishing boats heading out. The schoolteacher was already awake, drinking tea from a thermos. She poured me a cup without a word, and we watched the coast go by together until the brakes began to sigh and the town came into view.""")
    rec(6, "https://greenliving.example.com/home/composting-in-an-apartment", "2026-01-22", COMPOST)
    rec(7, "https://lepetitfournil.example/conseils/conserver-son-pain", "2026-01-23", """Le pain frais se conserve mieux qu’on ne le croit, à condition d’éviter le réfrigérateur. Le froid accélère le rassissement : la mie durcit plus vite à quatre degrés qu’à température ambiante. Mieux vaut garder la miche dans un sac en tissu ou une boîte à pain, la face coupée posée contre la planche.

Si vous en avez acheté trop, tranchez-le le jour même et glissez les tranches au congélateur. Elles passent directement au grille-pain et retrouvent un croustillant étonnant. Quant au pain de la veille, il fait d’excellentes tartines grillées, une soupe à l’oignon ou un pain perdu pour le goûter. Rien ne se perd, surtout pas le pain.""")
    rec(8, "https://civicdesk.example.org/posts/what-a-planning-meeting-is-like", "2026-01-27", """The first time I went to a planning commission meeting, I expected drama. What I found was a room with fluorescent lights, eleven folding chairs, a projector that took ten minutes to connect, and five volunteers who had clearly read every page of a 140-page application.

That last part surprised me most. The commissioners asked about drainage, about where delivery trucks would turn around, about whether the proposed street trees would survive the road salt in winter. None of it made headlines, but all of it will shape what that street looks like for the next fifty years.

Public comment came near the end. Three people spoke. One was worried about parking, one supported the project because her daughter couldn't afford to rent in town, and one mostly wanted to talk about a pothole. The chair thanked each of them by name and wrote something down after every comment.

If you have ever wondered whether showing up matters, go once. The room is usually nearly empty, which means a single clear, polite comment carries far more weight than you might think.""")
    rec(9, "https://notes.example.org/2026/01/first-year-with-bees#footer", "2026-01-27", "Posted in Uncategorized | Leave a comment")
    # Exact duplicate of sample-0001 once case and whitespace are normalized.
    dup = TULIPS.replace("Tulips are", "TULIPS   are", 1).replace("\n\n", "\n \n").replace(". The", ".  The")
    dup = dup.replace("Trim the stems", "trim the stems").replace("Ripening fruit", "ripening fruit")
    assert dup != TULIPS
    rec(10, "https://flowerdigest.example.net/reposts/tulips-upright", "2026-01-29", dup)
    rec(11, "https://www.latebloomers.example.net/music/learning-to-read-music", "2026-02-02", """I started piano lessons at forty-three, and the hardest part was not my fingers. It was the page. Children learn to read music at the same age they learn to read words, and they don't seem to mind that it looks like a code. Adults, it turns out, mind very much.

My teacher's advice was to stop trying to decode every note. Instead, she had me learn a handful of landmark notes by sight, middle C and the Cs and Gs around it, and read everything else by its distance from the nearest landmark. A note one line above G is B; a note one space below C is A. Within a few weeks I was reading intervals rather than letters, which is faster and, I'm told, how most fluent readers actually think.

The other thing that helped was reading very easy music, a lot of it, every day. Ten minutes of simple pieces I could almost play at sight did more for me than an hour of struggling through something hard.

I am still slow. But last month I sat down with a song I had never seen before and played it, badly, from beginning to end. It felt like reading my first sentence.""")
    rec(12, "https://www.oakridge-commons.example/news/volunteer-schedule-draft", "2026-02-03", None,
        title="Draft: spring volunteer schedule")
    rec(13, "https://shorelines.example.org/field-notes/tide-pools-at-low-water", "2026-02-05", """The best time to visit a rocky shore is the hour around low tide, when the sea pulls back and leaves behind hundreds of small pools, each one a separate world. Check a tide table before you go and arrive early; the water comes back faster than most people expect.

Move slowly and look closely. Anemones that look like blobs of jelly when closed open into green and pink flowers underwater. Small crabs hide under the edges of rocks, and periwinkles graze on the thin film of algae that coats every surface. If you sit still beside a pool for a few minutes, things you did not notice at first will begin to move.

A few rules keep the pools healthy. Walk on bare rock rather than on seaweed or mussel beds. If you turn over a stone to look underneath, put it back exactly the way you found it, because the animals living on its underside cannot survive in the sun. And leave everything where it belongs. A shell that looks empty may well be someone's home.""")
    rec(14, "https://nachbarschaft-lindenstrasse.example/werkstatt/fahrradreparatur", "2026-02-06", """Jeden zweiten Samstag verwandelt sich der Gemeinschaftsraum in der Lindenstraße in eine kleine Fahrradwerkstatt. Ehrenamtliche helfen dabei, Reifen zu flicken, Bremsen einzustellen oder eine quietschende Kette wieder in Gang zu bringen. Werkzeug und Ersatzteile sind vorhanden, eine Anmeldung ist nicht nötig.

Das Prinzip ist einfach: Repariert wird gemeinsam. Die Helferinnen und Helfer erklären jeden Handgriff, damit man beim nächsten Platten selbst weiß, was zu tun ist. Wer mag, kann eine kleine Spende für Schläuche und Bremsbeläge dalassen. Kaffee und Kuchen gibt es auch, und an sonnigen Tagen stehen die Räder bis auf den Gehweg.""")
    rec(15, "https://www.oakridge-commons.example/news/hours-change-april", "2026-02-09", """Starting April 6, the Oakridge Community Center will open at 7 a.m. on weekdays instead of 8, so that early risers can use the fitness room before work. On Fridays the building will now close at 9 p.m., an hour earlier than before, because few people come in late in the evening. Weekend hours are unchanged. The pottery studio and the computer lab keep their current schedules, and the front desk can answer questions about room bookings.""")
    rec(16, "https://www.slowtravel.example.net/stories/night-train-to-the-coast#end", "2026-02-10", "Thanks for reading!")
    rec(17, "https://www.gardenpath.example.com/blog/houseplants-in-winter", "2026-02-11", """Most houseplants that struggle in winter are not cold. They are overwatered. Shorter days mean slower growth, and a plant that drank a glass of water a week in July may need only half that in January. Before watering, push a finger into the soil up to the second knuckle. If it still feels damp, wait.

Light matters more than ever in the darker months. Move plants closer to the brightest window you have, and wipe the dust off broad leaves so they can make the most of it. Keep them away from radiators and from cold drafts near doors, both of which can make leaves yellow and drop.

Finally, hold off on fertilizer until spring. A plant that is barely growing cannot use it, and the unused salts build up in the soil.""")
    rec(18, "https://noticiasdelasierra.example/cultura/vuelve-el-bibliobus", "2026-02-12", """Desde este mes, el bibliobús vuelve a recorrer los pueblos de la sierra cada quince días. El vehículo, renovado durante el invierno, lleva cerca de tres mil libros, revistas y películas, y ahora cuenta con una rampa para personas con movilidad reducida.

En muchos de estos pueblos no hay biblioteca ni librería, así que la llegada del autobús es casi una pequeña fiesta. Los niños salen de la escuela para elegir cuentos, y los mayores aprovechan para pedir novelas de letra grande o periódicos atrasados. La bibliotecaria, que conoce a casi todos por su nombre, apunta los encargos para la próxima visita.""")
    # Exact duplicate of sample-0006 modulo case, whitespace and ASCII punctuation.
    dup = COMPOST.replace("You don't need a garden to compost.", "You don't need a GARDEN to compost!", 1)
    dup = dup.replace("bin; add", "bin, add").replace("\n\n", "\n\n\n").replace("A healthy bin", "a healthy bin")
    assert dup != COMPOST
    rec(19, "https://ecotips-aggregator.example.net/item/88213", "2026-02-14", dup)
    R.append(('{"id": "sample-0020", "text": "The ferry schedule for the spring season has been posted at the terminal and', True, "invalid JSON (truncated line)"))
    rec(21, "https://notes.example.org/2025/12/the-same-walk-every-day", "2026-02-17", """For three years I have walked the same loop every morning: down the hill, along the canal, across the footbridge, and back up past the school. People sometimes ask if I get bored. The honest answer is that I notice more now than I did in the first month.

When you walk a route once, you see the big things: a view, a church, a striking house. When you walk it a thousand times, the big things fade and the small ones take over. I know which gardens get frost first, which dog barks at bicycles but not at people, and the week in October when the plane trees by the canal drop their leaves all at once.

The route has become a kind of calendar. I don't need to look at my phone to know the season has turned. The canal tells me.""")
    rec(22, "https://jiating-yuanyi.example/shucai/yangtai-fanqie", "2026-02-18", """很多住在城市里的人都以为，没有院子就种不了菜。其实只要有一个朝南的阳台，也能种出不错的番茄。

首先要选对品种。小番茄比大番茄更适合盆栽，结果多，也不容易生病。花盆最好选深一点的，至少三十厘米，土里可以拌一些腐熟的有机肥。番茄喜欢阳光，每天最好能晒到六个小时以上。

浇水要见干见湿，不要每天都浇。植株长高以后，需要插一根竹竿把主茎绑住，防止被风吹倒。开花的时候，可以轻轻摇一摇枝条，帮助授粉。

从播种到收获大约需要三个月。当你第一次摘下自己种的红番茄时，会发现它的味道和超市里买的完全不一样。""")
    rec(23, "https://www.nightsky-club.example.net/guides/choosing-a-first-telescope", "2026-02-20", """The most common mistake with a first telescope is buying one that promises enormous magnification. Magnification is the least important number on the box. What matters is aperture, the diameter of the main lens or mirror, because it determines how much light the telescope gathers and how much detail it can show.

For most beginners, a simple reflector on a sturdy base, often called a Dobsonian, offers the most aperture for the money and is easy to set up. It will show the rings of Saturn, the cloud bands of Jupiter and the craters of the Moon, and on a dark night a handful of star clusters and galaxies.

Whatever you choose, a steady mount matters more than fancy optics. A shaky telescope is a frustrating telescope. And before you buy anything, go to a public observing night at a local astronomy club. An evening spent looking through other people's instruments is the best research there is.""")
    rec(24, "https://greenliving.example.com/archive/page/2", "2026-02-23", "Page 2 of 14")
    rec(25, "https://www.oakridge-commons.example/news/how-the-tool-library-works", "2026-02-25", """The Oakridge tool library lends out more than four hundred tools, from ladders and pressure washers to a tile saw that has probably renovated half the bathrooms on our street. Membership is free for residents. You bring identification and proof of address, sign a short agreement, and you can borrow up to three tools at a time for a week.

Most of the collection came from donations. When people move, downsize or finish a project, they often have tools that would otherwise sit in a garage for years. Volunteers check each donation, clean it and fix what they can before it goes on the shelf.

Late returns are common, and there are no fines. Instead, the library sends a friendly reminder, and then a second one with a photo of whoever is waiting for the tool. That second message, the volunteers say, almost always works.""")
    return R


# ---------------------------------------------------------------------------

def main():
    pages = build_pages()
    warc = build_warc(pages)
    with open(WARC_PATH, "wb") as f:
        f.write(warc)

    records = jsonl_records()
    with open(JSONL_PATH, "w", encoding="utf-8", newline="\n") as f:
        for line, _, _ in records:
            f.write(line + "\n")

    print(f"wrote {WARC_PATH} ({len(warc)} bytes, {len(pages)} pages)")
    print(f"wrote {JSONL_PATH} ({os.path.getsize(JSONL_PATH)} bytes, {len(records)} lines)")
    if "-v" in sys.argv:
        for p in pages:
            cs = p["charset"] or "-"
            print(f"  {p['url']}\t{p['kind']}\t{p['lang']}\t{cs}\t{p['words'] or ''}\t{p['outcome']}")


if __name__ == "__main__":
    main()
