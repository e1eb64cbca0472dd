"""Who and what is in the synthetic shop: the catalogue and the members with their latent
traits (see ``sample.py``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import special

from archer.sample import data as sd
from archer.sample import io as io
from archer.sample.calendar import Calendar

BGNBD, GAMMA_GAMMA = sd.BGNBD, sd.GAMMA_GAMMA
PRICE_STRIDE = 10**10  # cents: above any list price


@dataclass
class Products:
    """The catalogue as arrays (prices in cents)."""

    n: int
    category: np.ndarray
    tier: np.ndarray
    brand: np.ndarray  # index into brands
    noun: np.ndarray  # index into nouns
    name: list[str]
    price: np.ndarray
    cost: np.ndarray
    stock: np.ndarray
    brands: list[str]
    nouns: list[str]
    group_cum: np.ndarray  # (category, tier) group + within-group cumulative popularity
    group_idx: np.ndarray  # products sorted by group
    price_key: np.ndarray  # category * PRICE_STRIDE + price, sorted
    price_idx: np.ndarray  # products in that order

    def pick(self, rng: np.random.Generator, category: np.ndarray, tier: np.ndarray):
        """A product of each (category, tier), by popularity within the group."""
        g = category.astype(np.int64) * 3 + tier
        pos = np.searchsorted(self.group_cum, g + rng.random(len(g)) * 0.999999)
        return self.group_idx[np.minimum(pos, self.n - 1)]

    def nearest(self, rng: np.random.Generator, category: np.ndarray, price: np.ndarray):
        """A product of each category priced next to ``price`` (cents): the one just below or
        just above it, at random, or the category's cheapest or dearest beyond its range."""
        g = category.astype(np.int64)
        key = g * PRICE_STRIDE + np.clip(price, 0, PRICE_STRIDE - 1)
        lo = np.searchsorted(self.price_key, g * PRICE_STRIDE)
        hi = np.searchsorted(self.price_key, (g + 1) * PRICE_STRIDE) - 1
        above = np.searchsorted(self.price_key, key)
        pos = np.clip(above - (rng.random(len(key)) < 0.5), lo, hi)
        return self.price_idx[pos]


@dataclass
class Customers:
    """Members: observable fields and the latent traits they were drawn from."""

    n: int
    reg: np.ndarray  # registration time (days since start)
    channel: np.ndarray
    lam: np.ndarray
    pdrop: np.ndarray
    nu: np.ndarray
    mean_spend: np.ndarray  # yuan per order
    pref: np.ndarray
    band: np.ndarray
    discount: np.ndarray
    festival: np.ndarray
    basket: np.ndarray
    engagement: np.ndarray
    converts: np.ndarray
    order_channel: np.ndarray
    place: np.ndarray
    remote: np.ndarray
    anon: np.ndarray  # anonymous number, -1 if none
    has_email: np.ndarray
    email_opt: np.ndarray
    sms_opt: np.ndarray


def make_products(rng: np.random.Generator, n: int) -> Products:
    """About ``n`` products over all categories, with lognormal list prices per category."""
    cats = sd.CATEGORIES
    w = np.sqrt(np.array([c.popularity for c in cats]))
    counts = np.maximum(6, np.round(n * w / w.sum()).astype(int))
    counts[np.argmax(counts)] += n - counts.sum() if counts.sum() < n else 0
    n = int(counts.sum())
    category = np.repeat(np.arange(len(cats)), counts)
    median = np.array([c.median_price for c in cats])[category]
    sigma = np.array([c.price_sigma for c in cats])[category]
    price_yuan = median * np.exp(sigma * rng.standard_normal(n))
    # Shop prices end in 9 or .9: 159.00 → 158.90, 12.3 → 12.90.
    price = np.maximum(np.round(price_yuan).astype(np.int64) * 100 - 10, 190)
    cost = np.round(price * rng.uniform(0.40, 0.75, n)).astype(np.int64)
    tier = np.zeros(n, np.int64)
    brands: list[str] = [b for c in cats for b in c.brands]
    nouns: list[str] = [x for c in cats for x in c.nouns]
    b_off = np.cumsum([0] + [len(c.brands) for c in cats])
    n_off = np.cumsum([0] + [len(c.nouns) for c in cats])
    n_b = np.array([len(c.brands) for c in cats])[category]
    n_n = np.array([len(c.nouns) for c in cats])[category]
    brand = b_off[category] + (rng.random(n) * n_b).astype(np.int64)
    noun = n_off[category] + (rng.random(n) * n_n).astype(np.int64)
    adj = rng.integers(0, len(sd.ADJECTIVES), n)
    pop = np.empty(n)
    for c in range(len(cats)):
        m = np.flatnonzero(category == c)
        ranks = np.argsort(np.argsort(price[m]))
        tier[m] = np.minimum(ranks * 3 // len(m), 2)
        pop[m] = 1.0 / (1 + rng.permutation(len(m))) ** 0.9  # Zipf: a few bestsellers
    names = [
        f"{brands[b]} {sd.ADJECTIVES[a]} {nouns[x]}"
        for b, a, x in zip(brand, adj, noun, strict=True)
    ]
    stock = np.round(np.exp(rng.normal(5.0, 1.2, n))).astype(np.int64)
    u = rng.random(n)
    stock = np.where(u < 0.05, 0, np.where(u < 0.15, rng.integers(1, 10, n), stock))
    group = category * 3 + tier
    order = np.lexsort((np.arange(n), group))
    g_sorted = group[order]
    p_sorted = pop[order]
    cum = np.cumsum(p_sorted)
    start_idx = np.searchsorted(g_sorted, g_sorted, side="left")
    before = np.where(start_idx > 0, cum[start_idx - 1], 0.0)
    total = np.bincount(g_sorted, weights=p_sorted, minlength=len(cats) * 3)[g_sorted]
    group_cum = g_sorted + (cum - before) / total
    by_price = np.lexsort((np.arange(n), price, category))
    price_key = category[by_price].astype(np.int64) * PRICE_STRIDE + price[by_price]
    return Products(n, category, tier, brand, noun, names, price, cost, stock, brands, nouns,
                    group_cum, order, price_key, by_price)  # fmt: skip


def _normal_scores(lam: np.ndarray, pdrop: np.ndarray, nu: np.ndarray) -> tuple[np.ndarray, ...]:
    """Normal scores of the latent traits' population quantiles (high spend = low ν)."""

    def z(u: np.ndarray) -> np.ndarray:
        return special.ndtri(np.clip(u, 1e-9, 1 - 1e-9))

    return (
        z(special.gammainc(BGNBD["r"], BGNBD["alpha"] * lam)),
        z(special.betainc(BGNBD["a"], BGNBD["b"], pdrop)),
        z(special.gammaincc(GAMMA_GAMMA["q"], GAMMA_GAMMA["gamma"] * nu)),
    )


def _channels(
    rng: np.random.Generator, zl: np.ndarray, zp: np.ndarray, converts: np.ndarray
) -> np.ndarray:
    """Acquisition channel tilted by the latent traits' quantiles and by conversion.

    Conversion is drawn first, independently of the traits, and the channel is chosen given it
    (odds times the channel's conversion rate, or one minus it): channels keep their conversion
    rates while the buyers' λ and p stay exactly Gamma(r, α) and Beta(a, b), as for everyone.
    """
    conv = np.array(sd.CHANNEL_CONVERT)
    logits = (np.log(sd.CHANNEL_SHARE) + np.outer(zl, sd.CHANNEL_LAM_TILT)
              + np.outer(zp, sd.CHANNEL_DROP_TILT)
              + np.where(converts[:, None], np.log(conv), np.log1p(-conv)))  # fmt: skip
    return np.argmax(logits + rng.gumbel(size=logits.shape), axis=1).astype(np.int8)


def _preferred(rng: np.random.Generator, zs: np.ndarray) -> np.ndarray:
    """Preferred category, the big spenders leaning to the dearer categories.

    Spend itself stays exactly Gamma-Gamma; the category follows it (odds tilted by the spend
    quantile times the category's log price level), not the other way round.
    """
    pop = np.array([c.popularity for c in sd.CATEGORIES])
    level = np.log(np.array([c.median_price for c in sd.CATEGORIES]))
    level = (level - np.average(level, weights=pop)) / np.sqrt(
        np.average((level - np.average(level, weights=pop)) ** 2, weights=pop)
    )
    logits = np.log(pop / pop.sum()) + sd.PREF_SPEND_TILT * np.outer(zs, level)
    return np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)


def make_customers(
    rng: np.random.Generator, cal: Calendar, n: int, places: PlaceTable
) -> Customers:
    """Draw members' registration, channel and latent purchase traits."""
    reg = np.sort(cal.sample("register", rng.random(n)))
    lam = rng.gamma(BGNBD["r"], 1.0 / BGNBD["alpha"], n)
    pdrop = rng.beta(BGNBD["a"], BGNBD["b"], n)
    nu = rng.gamma(GAMMA_GAMMA["q"], 1.0 / GAMMA_GAMMA["gamma"], n)
    zl, zp, zs = _normal_scores(lam, pdrop, nu)
    share = np.array(sd.CHANNEL_SHARE)
    converts = rng.random(n) < share @ np.array(sd.CHANNEL_CONVERT) / share.sum()
    channel = _channels(rng, zl, zp, converts)
    pref = _preferred(rng, zs)
    mean_spend = GAMMA_GAMMA["p"] / nu
    # Price band: where a typical line of the member (the order value over the basket) ranks
    # among the members of the same preferred category, in thirds; orders take products priced
    # to fit their value, so the band shows in the prices paid within the category.
    basket = np.minimum(1.0 + rng.gamma(1.2, 0.6, n), 4.0)
    score = mean_spend / basket
    order = np.lexsort((score, pref))
    start = np.searchsorted(pref[order], pref[order])
    size = np.bincount(pref, minlength=len(sd.CATEGORIES))[pref[order]]
    q = np.empty(n)
    q[order] = (np.arange(n) - start + 0.5) / size
    band = np.where(q < 1 / 3, 0, np.where(q > 2 / 3, 2, 1)).astype(np.int8)
    ch_discount = np.array(sd.CHANNEL_DISCOUNT)[channel]
    ch_fest = np.array(sd.CHANNEL_FESTIVAL)[channel]
    place = places.draw(rng, n)
    has_email = rng.random(n) < 0.55
    return Customers(
        n=n,
        reg=reg,
        channel=channel,
        lam=lam,
        pdrop=pdrop,
        nu=nu,
        mean_spend=mean_spend,
        pref=pref,
        band=band,
        discount=rng.random(n) < ch_discount,
        festival=rng.random(n) < ch_fest,
        basket=basket,
        engagement=rng.gamma(1.5, 1 / 1.5, n),
        converts=converts,
        order_channel=rng.choice(3, n, p=sd.ORDER_CHANNEL_SHARE).astype(np.int8),
        place=place,
        remote=places.remote[place],
        anon=np.where(rng.random(n) < 0.85, 0, -1),
        has_email=has_email,
        email_opt=has_email & (rng.random(n) < 0.4),
        sms_opt=rng.random(n) < 0.6,
    )


class PlaceTable:
    """Provinces and cities with sampling weights (online shopping leans to the east coast)."""

    def __init__(self) -> None:
        from archer.places import load_places

        df = load_places()
        self.province = df["province"].astype(str).tolist()
        self.city = df["city"].astype(str).tolist()
        w = df["weight"].to_numpy(float) * np.where(
            df["province"].isin(sd.BUSY_PROVINCES).to_numpy(), 1.6, 1.0
        )
        self.p = w / w.sum()
        self.remote = df["province"].isin(sd.REMOTE_PROVINCES).to_numpy()
        prov_names = sorted(set(self.province))
        self.provinces = prov_names
        self.prov_code = np.array([prov_names.index(p) for p in self.province])

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(len(self.p), n, p=self.p)


def customer_columns(
    rng: np.random.Generator, cal: Calendar, cust: Customers, places: PlaceTable, base: int,
    width: int,
) -> dict[str, pa.Array]:  # fmt: skip
    """The observable customer table: names, contacts, demographics and consent."""
    n = cust.n
    i = np.arange(n)
    gender = rng.choice(3, n, p=[0.58, 0.37, 0.05])  # f, m, unknown
    surname = rng.integers(0, len(sd.SURNAMES), n)
    male = np.where(gender == 2, rng.random(n) < 0.4, gender == 1)
    given_f = rng.integers(0, len(sd.GIVEN_F), n)
    given_m = rng.integers(0, len(sd.GIVEN_M), n)
    given = np.where(male, len(sd.GIVEN_F) + given_m, given_f)
    name = pc.binary_join_element_wise(
        pa.array(sd.SURNAMES).take(pa.array(surname)),
        pa.array(sd.GIVEN_F + sd.GIVEN_M).take(pa.array(given)),
        "",
    )
    # Unique numbers drawn without replacement keep emails and phones unique.
    handle = rng.choice(10 ** max(width, 8), n, replace=False)
    domain = rng.choice(len(sd.EMAIL_DOMAINS), n, p=sd.EMAIL_DOMAIN_SHARE)
    email = pc.binary_join_element_wise(
        pa.array(sd.SURNAME_PINYIN).take(pa.array(surname)),
        pc.cast(pa.array(handle), pa.string()),
        "@",
        pa.array(sd.EMAIL_DOMAINS).take(pa.array(domain)),
        "",
    )
    email = pc.if_else(pa.array(cust.has_email), email, pa.nulls(n, pa.string()))
    prefix = np.array(sd.PHONE_PREFIXES)[rng.integers(0, len(sd.PHONE_PREFIXES), n)]
    phone = prefix * 10**8 + rng.choice(10**8, n, replace=False)
    age = np.minimum(18 + rng.gamma(2.2, 6.0, n), 65.9)
    start_epoch = (cal.start - date(1970, 1, 1)).days
    birthday = (start_epoch - age * 365.25).astype(np.int64)
    occupation = rng.choice(
        len(sd.OCCUPATIONS), n, p=np.array(sd.OCCUPATION_SHARE) / sum(sd.OCCUPATION_SHARE)
    )
    occupation = np.where(rng.random(n) < 0.3, -1, occupation)
    # attributes: VIP level (leaning to frequent buyers) and whether WeChat is bound.
    lam_q = special.gammainc(BGNBD["r"], BGNBD["alpha"] * cust.lam)
    vip = np.clip(np.floor(4 * lam_q**3 + rng.normal(0, 0.4, n)), 0, 3).astype(np.int64)
    wechat = rng.random(n) < 0.6
    attr_values = [json.dumps({"vip_level": v, "wechat_bound": b}) for v in range(4)
                   for b in (False, True)]  # fmt: skip
    attr = np.where(rng.random(n) < 0.2, -1, vip * 2 + wechat)
    return {
        "customer_id": io.fixed_ids("C", i + 1, width),
        "registered_at": io.timestamps(base, cust.reg),
        "name": name,
        "email": email,
        "phone": io.fixed_ids("", phone, 11),
        "gender": io.coded(np.where(gender == 2, -1, gender), ["f", "m"]),
        "birthday": io.dates(birthday, rng.random(n) >= 0.10),
        "province": io.coded(places.prov_code[cust.place], places.provinces),
        "city": io.coded(cust.place, places.city),
        "occupation": io.coded(occupation, sd.OCCUPATIONS),
        "acquisition_channel": io.coded(cust.channel, sd.CHANNELS),
        "email_opt_in": io.bools(cust.email_opt),
        "sms_opt_in": io.bools(cust.sms_opt),
        "attributes": io.coded(attr, attr_values),
    }
