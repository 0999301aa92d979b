"""The world the risk scenario simulator plays in: places, customers, their habits.

Cities get one /16 each in a geolocation table built here (the real
`risk.geo.GeoTable`). Customers have a home city, one or two habitual hours,
a session rate, a typical transfer amount, a typing rhythm for their 6-digit
PIN (6 hold + 5 flight times, ms), and occasionally travel, change phones,
mistype their PIN or log in through a VPN abroad. Every number below is a
modelling assumption, stated where it is made; `docs/risk.md` lists them.

Typing model (per customer, per feature): holds ~ N(100, 22) ms and flights ~
N(240, 85) ms between customers; within a customer, sd = 12 % of the mean,
plus a 6 % chance per sample of one hesitation (a flight time x1.5-3).
"""

from __future__ import annotations

import ipaddress
import math
import random
from dataclasses import dataclass, field

from risk.geo import GeoLocation, GeoTable, haversine_km

__all__ = ["CITIES", "City", "Customer", "Trip", "make_customers", "typing_sample", "world_table"]

DAY = 86_400.0
HOUR = 3600.0
PIN_KEYS = 6


@dataclass(frozen=True, slots=True)
class City:
    name: str
    country: str
    region: str
    lat: float
    lon: float
    index: int
    tz: str
    domestic: bool = True
    datacentre: bool = False

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network((f"10.{self.index}.0.0", 16))

    def address(self, rng: random.Random) -> str:
        return str(self.network.network_address + rng.randrange(1, 65_535))


_PLACES = [
    ("Shanghai", "CN", "SH", 31.2304, 121.4737, "Asia/Shanghai", True, False),
    ("Beijing", "CN", "BJ", 39.9042, 116.4074, "Asia/Shanghai", True, False),
    ("Guangzhou", "CN", "GD", 23.1291, 113.2644, "Asia/Shanghai", True, False),
    ("Shenzhen", "CN", "GD", 22.5431, 114.0579, "Asia/Shanghai", True, False),
    ("Chengdu", "CN", "SC", 30.5728, 104.0668, "Asia/Shanghai", True, False),
    ("Hangzhou", "CN", "ZJ", 30.2741, 120.1551, "Asia/Shanghai", True, False),
    ("Wuhan", "CN", "HB", 30.5928, 114.3055, "Asia/Shanghai", True, False),
    ("Xi'an", "CN", "SN", 34.3416, 108.9398, "Asia/Shanghai", True, False),
    ("Nanjing", "CN", "JS", 32.0603, 118.7969, "Asia/Shanghai", True, False),
    ("Chongqing", "CN", "CQ", 29.5630, 106.5516, "Asia/Shanghai", True, False),
    ("Hong Kong", "HK", "HK", 22.3193, 114.1694, "Asia/Hong_Kong", False, False),
    ("Singapore", "SG", "SG", 1.3521, 103.8198, "Asia/Singapore", False, False),
    ("Tokyo", "JP", "13", 35.6762, 139.6503, "Asia/Tokyo", False, False),
    ("London", "GB", "ENG", 51.5072, -0.1276, "Europe/London", False, False),
    ("New York", "US", "NY", 40.7128, -74.0060, "America/New_York", False, False),
    ("Sydney", "AU", "NSW", -33.8688, 151.2093, "Australia/Sydney", False, False),
    ("Frankfurt DC", "DE", "HE", 50.1109, 8.6821, "Europe/Berlin", False, True),
    ("Ashburn DC", "US", "VA", 39.0438, -77.4874, "America/New_York", False, True),
    ("Lagos", "NG", "LA", 6.5244, 3.3792, "Africa/Lagos", False, False),
    ("Moscow", "RU", "MOW", 55.7558, 37.6173, "Europe/Moscow", False, False),
]
CITIES: tuple[City, ...] = tuple(
    City(name, country, region, lat, lon, i + 1, tz, domestic, dc)
    for i, (name, country, region, lat, lon, tz, domestic, dc) in enumerate(_PLACES)
)
DOMESTIC = tuple(c for c in CITIES if c.domestic)
ABROAD = tuple(c for c in CITIES if not c.domestic and not c.datacentre)
DATACENTRES = tuple(c for c in CITIES if c.datacentre)
UNLOCATED = "172.16.0.0/12"
"""Addresses outside every city: roaming and carrier ranges the table lacks."""


def world_table() -> GeoTable:
    return GeoTable(
        (c.network, GeoLocation(c.country, c.region, c.name, c.lat, c.lon)) for c in CITIES
    )


def unlocated_address(rng: random.Random) -> str:
    return str(ipaddress.IPv4Address("172.16.0.0") + rng.randrange(1, 2**20 - 1))


@dataclass(slots=True)
class Trip:
    city: City
    departs: float
    arrives: float
    returns: float
    back_home: float


@dataclass(slots=True)
class Customer:
    subject: str
    home: City
    peaks: tuple[float, ...]
    """Habitual local hours (one or two), each with a spread of `peak_sd` hours."""
    peak_sd: float
    sessions_per_day: float
    amount_median: float
    amount_sigma: float
    transfer_share: float
    typing: tuple[float, ...]
    device_generation: int = 0
    """Bumped when the customer changes phone (the old one is never seen again)."""
    trips: list[Trip] = field(default_factory=list)

    def location(self, at: float) -> City | None:
        """Where the customer is at `at`; None while in the air."""
        for trip in self.trips:
            if trip.departs <= at < trip.arrives or trip.returns <= at < trip.back_home:
                return None
            if trip.arrives <= at < trip.returns:
                return trip.city
        return self.home


def _flight_hours(a: City, b: City) -> float:
    """Door-to-door: cruise at 750 km/h plus two hours on the ground."""
    return haversine_km(a.lat, a.lon, b.lat, b.lon) / 750.0 + 2.0


def plan_trips(customer: Customer, rng: random.Random, days: int, utc_offset: float) -> None:
    """About one trip a quarter (a fifth of them abroad), two to six days long."""
    day = 0
    while day < days:
        if rng.random() < 1 / 90:
            abroad = rng.random() < 0.2
            choices = ABROAD if abroad else tuple(c for c in DOMESTIC if c != customer.home)
            city = rng.choice(choices)
            flight = _flight_hours(customer.home, city) * HOUR
            departs = day * DAY + rng.uniform(7, 20) * HOUR - utc_offset
            stay = rng.randint(2, 6)
            returns = departs + flight + stay * DAY
            customer.trips.append(Trip(city, departs, departs + flight, returns, returns + flight))
            day += stay + 2
        day += 1


def make_customers(rng: random.Random, count: int, days: int, utc_offset: float) -> list[Customer]:
    customers = []
    homes = DOMESTIC
    weights = [6, 6, 4, 4, 3, 3, 2, 2, 2, 2]  # bigger cities hold more customers
    for i in range(count):
        peaks = (rng.uniform(7, 22),)
        if rng.random() < 0.5:
            peaks = (*peaks, rng.uniform(7, 23))
        holds = [rng.gauss(100, 22) for _ in range(PIN_KEYS)]
        flights = [rng.gauss(240, 85) for _ in range(PIN_KEYS - 1)]
        typing = [max(40.0, holds[0])]
        for hold, flight in zip(holds[1:], flights, strict=True):
            typing += [max(60.0, flight), max(40.0, hold)]
        customer = Customer(
            subject=f"customer-{i:05d}",
            home=rng.choices(homes, weights)[0],
            peaks=peaks,
            peak_sd=rng.uniform(0.7, 1.8),
            sessions_per_day=rng.uniform(0.3, 1.5),
            amount_median=math.exp(rng.uniform(math.log(80), math.log(5000))),
            amount_sigma=rng.uniform(0.3, 0.9),
            transfer_share=rng.uniform(0.05, 0.35),
            typing=tuple(typing),
        )
        plan_trips(customer, rng, days, utc_offset)
        customers.append(customer)
    return customers


def typing_sample(
    rng: random.Random, means: tuple[float, ...], relative_sd: float = 0.12
) -> tuple[float, ...]:
    """One PIN entry by the typist whose per-feature means are `means`."""
    sample = [max(1.0, rng.gauss(m, relative_sd * m)) for m in means]
    if rng.random() < 0.06:
        flight = rng.randrange(1, len(sample), 2)  # odd positions are flight times
        sample[flight] *= rng.uniform(1.5, 3.0)
    return tuple(round(x, 1) for x in sample)


def session_hour(rng: random.Random, customer: Customer) -> float:
    """A local hour: a habitual one most of the time, any hour 3 % of the time."""
    if rng.random() < 0.03:
        return rng.uniform(0, 24)
    return rng.gauss(rng.choice(customer.peaks), customer.peak_sd) % 24


def transfer_amount(rng: random.Random, customer: Customer) -> float:
    """Log-normal around the customer's median; 1 % are a one-off ten times larger."""
    amount = rng.lognormvariate(math.log(customer.amount_median), customer.amount_sigma)
    if rng.random() < 0.01:
        amount *= 10
    return round(amount, 2)
