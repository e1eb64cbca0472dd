"""Vocabulary and population constants of the synthetic shop (see ``sample.py``)."""

from __future__ import annotations

from dataclasses import dataclass

# BG/NBD population (time unit: day) and Gamma-Gamma spend population (yuan).
BGNBD = {"r": 0.5, "alpha": 45.0, "a": 1.1, "b": 2.6}
GAMMA_GAMMA = {"p": 6.0, "q": 3.5, "gamma": 60.0}
# How strongly big spenders lean to the dearer categories (per standard deviation of spend).
PREF_SPEND_TILT = 0.5


@dataclass(frozen=True)
class Category:
    """A product category: popularity, list-price distribution and the words around it."""

    key: str
    popularity: float
    median_price: float
    price_sigma: float
    max_quantity: int
    refund_rate: float
    brands: tuple[str, ...]
    nouns: tuple[str, ...]
    words: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    Category("apparel", 0.14, 159, 0.6, 2, 0.15,
             ("Urban Thread", "Lumi", "North Pine", "Mulberry Lane", "Sora", "Kite & Co"),
             ("T-shirt", "Down Jacket", "Jeans", "Dress", "Hoodie", "Sneakers", "Scarf"),
             ("女装", "连衣裙", "羽绒服", "T恤", "clothes", "dress")),
    Category("skincare", 0.11, 189, 0.6, 3, 0.062,
             ("Aquaveil", "Camellia Lab", "Dr. Bloom", "Pure Dew", "Seabreeze"),
             ("Face Cream", "Serum", "Toner", "Sunscreen", "Sheet Mask", "Cleanser", "Eye Cream"),
             ("护肤", "面霜", "精华", "防晒", "面膜", "skincare", "serum")),
    Category("cosmetics", 0.08, 129, 0.55, 3, 0.062,
             ("Rouge Atelier", "Petal", "Velvet Muse", "Mirage"),
             ("Lipstick", "Foundation", "Eyeshadow Palette", "Mascara", "Blush", "Perfume"),
             ("口红", "粉底", "香水", "彩妆", "lipstick", "makeup")),
    Category("chocolate", 0.04, 69, 0.5, 4, 0.025,
             ("Cocoa Garden", "Dolce", "Maison Noir"),
             ("Dark Chocolate", "Truffle Gift Box", "Milk Chocolate", "Praline Box"),
             ("巧克力", "chocolate", "巧克力礼盒")),
    Category("snacks", 0.10, 29, 0.5, 5, 0.025,
             ("Happy Squirrel", "Crunch Time", "Golden Grain", "Spicy Panda"),
             ("Mixed Nuts", "Beef Jerky", "Dried Mango", "Seaweed Snack", "Spicy Strips"),
             ("零食", "坚果", "辣条", "snacks", "nuts")),
    Category("tea", 0.05, 99, 0.7, 4, 0.025,
             ("West Lake Leaf", "Cloud Peak", "Jade Spring"),
             ("Longjing Green Tea", "Pu'er Cake", "Oolong", "Jasmine Tea", "Black Tea Set"),
             ("茶叶", "龙井", "普洱", "tea", "green tea")),
    Category("home", 0.09, 119, 0.8, 2, 0.075,
             ("Quiet Home", "Linen House", "Cozy Den"),
             ("Bed Sheet Set", "Pillow", "Storage Box", "Towel Set", "Desk Lamp", "Curtain"),
             ("家居", "四件套", "收纳", "bedding", "pillow")),
    Category("kitchen", 0.06, 99, 0.8, 2, 0.062,
             ("Iron Wok", "Chef Mate", "Ceramica"),
             ("Non-stick Pan", "Rice Cooker", "Knife Set", "Thermos", "Air Fryer"),
             ("厨具", "炒锅", "空气炸锅", "保温杯", "air fryer")),
    Category("electronics", 0.09, 399, 0.9, 2, 0.088,
             ("Volt", "Pixelon", "Echo Bay", "Nova"),
             ("Wireless Earbuds", "Power Bank", "Smart Watch", "Bluetooth Speaker", "Charger"),
             ("耳机", "充电宝", "智能手表", "earbuds", "smart watch")),
    Category("baby", 0.05, 149, 0.7, 4, 0.05,
             ("Little Sprout", "Bubba", "Cloud Bunny"),
             ("Diapers", "Baby Formula", "Stroller", "Baby Wipes", "Feeding Bottle"),
             ("纸尿裤", "奶粉", "母婴", "diapers", "stroller")),
    Category("sports", 0.05, 199, 0.8, 2, 0.088,
             ("Peak Runner", "Iron Lotus", "Swift"),
             ("Yoga Mat", "Running Shoes", "Dumbbells", "Sports Bra", "Jump Rope"),
             ("瑜伽垫", "跑鞋", "健身", "yoga mat", "running shoes")),
    Category("books", 0.04, 49, 0.5, 3, 0.025,
             ("Dawn Press", "Blue Whale Books", "Inkstone"),
             ("Novel", "Picture Book", "Cookbook", "History", "Comic"),
             ("图书", "绘本", "小说", "books", "novel")),
    Category("jewelry", 0.02, 499, 0.9, 1, 0.075,
             ("Lune", "Silver Fox", "Golden Knot"),
             ("Necklace", "Earrings", "Bracelet", "Ring", "Pendant"),
             ("项链", "耳环", "手链", "jewelry", "necklace")),
    Category("pets", 0.04, 89, 0.7, 4, 0.037,
             ("Happy Paws", "Meow Bistro", "Wag"),
             ("Cat Food", "Dog Food", "Cat Litter", "Pet Toy", "Pet Bed"),
             ("猫粮", "狗粮", "猫砂", "cat food", "dog food")),
    Category("flowers", 0.03, 129, 0.5, 2, 0.062,
             ("Bloom Box", "Petal Post", "Rose Story"),
             ("Rose Bouquet", "Carnation Bouquet", "Lily Bouquet", "Preserved Flower Box"),
             ("鲜花", "玫瑰", "花束", "flowers", "roses")),
)  # fmt: skip
CATEGORY_KEYS = tuple(c.key for c in CATEGORIES)

# Categories bought together (second lines of a basket).
AFFINITY = {
    "apparel": ("sports", "jewelry", "cosmetics"),
    "skincare": ("cosmetics", "home"),
    "cosmetics": ("skincare", "jewelry", "flowers"),
    "chocolate": ("flowers", "snacks", "tea"),
    "snacks": ("tea", "chocolate", "pets"),
    "tea": ("snacks", "kitchen", "books"),
    "home": ("kitchen", "baby"),
    "kitchen": ("home", "snacks"),
    "electronics": ("sports", "books", "home"),
    "baby": ("home", "books", "snacks"),
    "sports": ("apparel", "electronics"),
    "books": ("tea", "baby", "electronics"),
    "jewelry": ("flowers", "cosmetics", "apparel"),
    "pets": ("snacks", "home"),
    "flowers": ("chocolate", "jewelry"),
}
# Gift categories that festival orders lean to.
FESTIVAL_GIFTS = {
    "spring_festival": ("snacks", "tea", "home", "chocolate"),
    "valentines": ("chocolate", "flowers", "jewelry", "cosmetics"),
    "womens_day": ("skincare", "cosmetics", "flowers"),
    "mothers_day": ("flowers", "skincare", "jewelry"),
    "520": ("jewelry", "cosmetics", "flowers", "chocolate"),
    "qixi": ("flowers", "chocolate", "jewelry"),
    "mid_autumn": ("tea", "snacks", "chocolate"),
}
BIG_SALES = ("618", "singles_day", "double_12")
ADJECTIVES = ("Classic", "Premium", "Everyday", "Deluxe", "Mini", "Signature", "Limited", "Pro",
              "Organic", "Lite", "Gift", "Family")  # fmt: skip
TIERS = ("budget", "mid", "premium")

# Acquisition channels: share, conversion to a first order, and tilts of the latent traits.
# lam_tilt/drop_tilt shift the channel's odds by the customer's purchase-rate / dropout
# quantile, so the population stays exactly Gamma/Beta while channels differ.
CHANNELS = ("search", "social", "ads", "referral", "direct", "group_buy", "live_stream")
CHANNEL_SHARE = (0.24, 0.17, 0.20, 0.09, 0.14, 0.08, 0.08)
CHANNEL_CONVERT = (0.52, 0.42, 0.40, 0.64, 0.58, 0.66, 0.50)
CHANNEL_LAM_TILT = (0.1, -0.1, -0.3, 0.45, 0.3, -0.1, -0.2)
CHANNEL_DROP_TILT = (0.0, 0.1, 0.25, -0.35, -0.2, 0.3, 0.15)
CHANNEL_DISCOUNT = (0.20, 0.25, 0.30, 0.18, 0.12, 0.50, 0.35)
CHANNEL_FESTIVAL = (0.11, 0.13, 0.15, 0.09, 0.08, 0.12, 0.16)
# (source, medium) of the visit that brought the member in, per acquisition channel.
CHANNEL_UTM = {
    "search": (("baidu", "organic"), ("baidu", "cpc"), ("bing", "organic")),
    "social": (("xiaohongshu", "social"), ("weibo", "social"), ("douyin", "social")),
    "ads": (("douyin", "cpc"), ("tencent_ads", "cpc"), ("baidu", "cpc")),
    "referral": (("friend_share", "referral"),),
    "direct": (),
    "group_buy": (("wechat", "group_buy"),),
    "live_stream": (("douyin_live", "live"), ("kuaishou_live", "live")),
}
# Later visits: (source, medium, weight); None = direct.
VISIT_UTM = (
    (None, None, 0.52), ("baidu", "organic", 0.14), ("wechat", "social", 0.08),
    ("xiaohongshu", "social", 0.07), ("douyin", "cpc", 0.06), ("newsletter", "email", 0.06),
    ("sms", "sms", 0.04), ("tencent_ads", "cpc", 0.03),
)  # fmt: skip
ORDER_CHANNELS = ("app", "mini_program", "web")
ORDER_CHANNEL_SHARE = (0.55, 0.30, 0.15)
DEVICES = {"app": ("ios", "android"), "mini_program": ("wechat",), "web": ("pc", "h5")}

SURNAMES = ("王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱",
            "胡", "郭", "何", "林", "高", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯",
            "邓", "曹", "彭", "曾", "肖", "田", "董", "潘", "袁", "蔡", "蒋", "余")  # fmt: skip
SURNAME_PINYIN = ("wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou",
                  "xu", "sun", "ma", "zhu", "hu", "guo", "he", "lin", "gao", "luo", "zheng",
                  "liang", "xie", "song", "tang", "xu", "han", "feng", "deng", "cao", "peng",
                  "zeng", "xiao", "tian", "dong", "pan", "yuan", "cai", "jiang", "yu")  # fmt: skip
GIVEN_F = ("芳", "娜", "敏", "静", "丽", "婷", "雪", "琳", "佳怡", "欣怡", "梓涵", "雨桐", "思琪",
           "晓燕", "玉兰", "丹", "颖", "倩")  # fmt: skip
GIVEN_M = ("伟", "强", "磊", "军", "洋", "勇", "杰", "涛", "浩然", "宇轩", "子豪", "俊杰", "志强",
           "建华", "明", "鹏", "斌", "超")  # fmt: skip
EMAIL_DOMAINS = ("qq.com", "163.com", "126.com", "foxmail.com", "gmail.com", "outlook.com",
                 "sina.com")  # fmt: skip
EMAIL_DOMAIN_SHARE = (0.42, 0.2, 0.08, 0.08, 0.1, 0.07, 0.05)
PHONE_PREFIXES = (130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152, 155, 156, 157,
                  158, 159, 166, 176, 177, 180, 181, 182, 183, 185, 186, 187, 188, 189, 191,
                  198, 199)  # fmt: skip
OCCUPATIONS = ("office worker", "student", "engineer", "teacher", "civil servant", "doctor",
               "nurse", "self-employed", "freelancer", "sales", "designer", "retired",
               "homemaker", "factory worker")  # fmt: skip
OCCUPATION_SHARE = (0.26, 0.12, 0.1, 0.07, 0.05, 0.03, 0.03, 0.09, 0.06, 0.06, 0.04, 0.03,
                    0.03, 0.03)  # fmt: skip
REMOTE_PROVINCES = ("Xinjiang", "Tibet", "Qinghai", "Inner Mongolia", "Gansu", "Ningxia")
BUSY_PROVINCES = ("Guangdong", "Zhejiang", "Jiangsu", "Shanghai", "Beijing", "Fujian")

REFUND_REASONS = (
    "quality issue",
    "wrong size",
    "not as described",
    "changed mind",
    "damaged in transit",
    "late delivery",
    "missing item",
    "price protection",
)
# Weights of reasons for full and partial refunds (apparel's "wrong size" is boosted apart).
FULL_REASON_SHARE = (0.22, 0.18, 0.17, 0.25, 0.08, 0.10, 0.0, 0.0)
PARTIAL_REASON_SHARE = (0.25, 0.05, 0.1, 0.0, 0.2, 0.0, 0.25, 0.15)
# Coupon code prefixes per festival rule (``archer.festivals.DEFAULT_FESTIVALS`` keys).
FESTIVAL_CODES = {
    "spring_festival": "CNY", "valentines": "LOVE", "womens_day": "GODDESS",
    "mothers_day": "MOM", "520": "520", "618": "618", "qixi": "QIXI", "mid_autumn": "MOON",
    "singles_day": "1111", "double_12": "1212",
}  # fmt: skip
COUPON_VALUES = (5, 10, 20, 30, 50, 100)  # yuan off ...
COUPON_THRESHOLDS = (3900, 9900, 19900, 29900, 49900, 99900)  # ... from these goods (cents)
