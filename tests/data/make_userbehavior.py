"""Write ``userbehavior_sample.csv``: a small log in the layout of Tianchi's UserBehavior.

The real file (Alibaba Tianchi, dataset 649, ``UserBehavior.csv``, 3.5 GB, about 100 million
lines of about a million users) cannot be part of the tests; this script writes a few
thousand lines with its documented layout: no header, five comma-separated columns
``user_id,item_id,category_id,behavior_type,timestamp``, integer ids in the file's ranges
(users up to about 1,018,000, items and categories up to about 5,163,000), behaviour
``pv``/``cart``/``fav``/``buy`` and Unix seconds between 2017-11-25 00:00 and 2017-12-03
23:59 China time, the file's nine days. Lines are grouped by user, as in the file, each user's
in time order; an item always has the same category. Buys are more frequent than the real
file's 2% so that the funnel's bought step has people in it; a few users buy on two days and
one line is given twice (the real file repeats some lines).

Run ``python tests/data/make_userbehavior.py`` to write it again: the seed makes the same file.
"""

from __future__ import annotations

import random
from pathlib import Path

START = 1511539200  # 2017-11-25 00:00 +08:00
END = 1512316799  # 2017-12-03 23:59:59 +08:00
OUT = Path(__file__).with_name("userbehavior_sample.csv")


def lines(seed: int = 649, users: int = 80) -> list[str]:
    rnd = random.Random(seed)
    categories = rnd.sample(range(1_000, 5_162_430), 12)
    items = {item: rnd.choice(categories) for item in rnd.sample(range(1, 5_163_071), 150)}
    pool = list(items)
    out: list[str] = []
    for user in sorted(rnd.sample(range(1, 1_018_012), users)):
        times = sorted(rnd.randint(START, END) for _ in range(rnd.randint(3, 40)))
        seen: list[int] = []
        for t in times:
            kind = rnd.choices(("pv", "cart", "fav", "buy"), (82, 8, 4, 6))[0]
            # A cart, favourite or buy is mostly of an item the user looked at before.
            item = rnd.choice(seen) if seen and kind != "pv" and rnd.random() < 0.8 else None
            item = item or rnd.choice(pool)
            seen.append(item)
            out.append(f"{user},{item},{items[item]},{kind},{t}")
    out.insert(len(out) // 2, out[len(out) // 2])  # a line given twice
    return out


if __name__ == "__main__":
    OUT.write_text("\n".join(lines()) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(lines())} lines")
