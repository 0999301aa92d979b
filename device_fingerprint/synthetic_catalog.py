"""Real-world values the synthetic population draws from (`device_fingerprint.synthetic`).

User-Agent formats follow the browsers' own (Chrome's reduced UA since 2023,
Safari's frozen ``18_6`` OS token on iOS 26, Firefox's ``rv:``), WebGL renderer
strings are ANGLE's and Apple's formats, screen sizes are CSS pixels with the
device pixel ratio, phone models are retail model codes. Weights are rough
market shares for a Chinese retail bank's customers (mostly mainland China,
some Hong Kong and overseas): the population is meant to be *hard* for device
ids — many customers share one time zone, one language and popular phones.
"""

from __future__ import annotations

from typing import Final

Weighted = tuple[float, ...]

CHROME_MAJOR: Final = 156
"""Newest Chromium major in the population (Chromium 156 is what runs the tests here)."""
FIREFOX_MAJOR: Final = 152

# (weight, os, browser, class) — class: desktop web, phone web, phone app
PROFILES: Final = (
    (0.22, "windows", "chrome", "desktop"),
    (0.07, "windows", "edge", "desktop"),
    (0.02, "windows", "firefox", "desktop"),
    (0.04, "macos", "safari", "desktop"),
    (0.04, "macos", "chrome", "desktop"),
    (0.01, "linux", "chrome", "desktop"),
    (0.005, "linux", "firefox", "desktop"),
    (0.07, "ios", "safari", "phone"),
    (0.05, "android", "chrome", "phone"),
    (0.03, "android", "vendor", "phone"),
    (0.20, "ios", "app", "app"),
    (0.235, "android", "app", "app"),
)

# (weight, vendor, model, PCI device id) — Windows GPUs as ANGLE reports them
WINDOWS_GPUS: Final = (
    (0.16, "Intel", "Intel(R) UHD Graphics 620", "0x00005917"),
    (0.14, "Intel", "Intel(R) Iris(R) Xe Graphics", "0x00009A49"),
    (0.09, "Intel", "Intel(R) UHD Graphics 630", "0x00003E92"),
    (0.08, "Intel", "Intel(R) UHD Graphics", "0x00009B41"),
    (0.07, "Intel", "Intel(R) UHD Graphics 770", "0x00004680"),
    (0.08, "NVIDIA", "NVIDIA GeForce RTX 3060", "0x00002504"),
    (0.07, "NVIDIA", "NVIDIA GeForce GTX 1650", "0x00001F82"),
    (0.05, "NVIDIA", "NVIDIA GeForce RTX 4060", "0x00002882"),
    (0.04, "NVIDIA", "NVIDIA GeForce GTX 1050 Ti", "0x00001C82"),
    (0.03, "NVIDIA", "NVIDIA GeForce RTX 4060 Laptop GPU", "0x000028E0"),
    (0.08, "AMD", "AMD Radeon(TM) Graphics", "0x00001638"),
    (0.04, "AMD", "AMD Radeon RX 580 2048SP", "0x00006FDF"),
    (0.03, "AMD", "AMD Radeon(TM) 780M", "0x000015BF"),
)
# (weight, width, height, dpr) in CSS pixels, as screen.width/height report them
WINDOWS_SCREENS: Final = (
    (0.34, 1920, 1080, 1.0),
    (0.16, 1536, 864, 1.25),
    (0.09, 1366, 768, 1.0),
    (0.08, 2560, 1440, 1.0),
    (0.05, 1280, 720, 1.5),
    (0.05, 1440, 900, 1.0),
    (0.05, 1600, 900, 1.0),
    (0.04, 1920, 1200, 1.0),
    (0.04, 1707, 960, 1.5),
    (0.03, 1280, 800, 2.0),
    (0.03, 2560, 1080, 1.0),
    (0.02, 1280, 1024, 1.0),
    (0.02, 3840, 2160, 1.0),
)
WINDOWS_CORES: Final = (
    (0.12, 4),
    (0.14, 6),
    (0.30, 8),
    (0.18, 12),
    (0.14, 16),
    (0.07, 20),
    (0.05, 24),
)
WINDOWS_MEMORY: Final = ((0.08, 4), (0.92, 8))  # navigator.deviceMemory is capped at 8
# uach platformVersion: Windows 10 reports 10.0.0 and below, Windows 11 13.0.0 and up
WINDOWS_VERSIONS: Final = ((0.22, "10.0.0"), (0.10, "15.0.0"), (0.38, "19.0.0"), (0.30, "26.0.0"))

# (weight, chip, cores as reported, screen w, h, dpr)
MACS: Final = (
    (0.20, "Apple M1", 8, 1440, 900, 2.0),
    (0.18, "Apple M2", 8, 1470, 956, 2.0),
    (0.12, "Apple M3", 8, 1470, 956, 2.0),
    (0.10, "Apple M1 Pro", 10, 1512, 982, 2.0),
    (0.08, "Apple M3 Pro", 11, 1512, 982, 2.0),
    (0.06, "Apple M2 Max", 12, 1728, 1117, 2.0),
    (0.08, "Apple M4", 10, 2240, 1260, 2.0),
    (0.10, "Apple M2", 8, 2560, 1440, 1.0),
    (0.08, "Intel(R) Iris(TM) Plus Graphics 655", 8, 1440, 900, 2.0),
)
MAC_VERSIONS: Final = ((0.15, "14.7"), (0.45, "15.6"), (0.40, "26.1"))
MAC_SAFARI: Final = {"14.7": "18.6", "15.6": "18.6", "26.1": "26.1"}

# iPhones: (weight, marketing name, machine id, css w, h, dpr)
IPHONES: Final = (
    (0.08, "iPhone 16 Pro Max", "iPhone17,2", 440, 956, 3.0),
    (0.07, "iPhone 16 Pro", "iPhone17,1", 402, 874, 3.0),
    (0.06, "iPhone 16", "iPhone17,3", 393, 852, 3.0),
    (0.09, "iPhone 15 Pro Max", "iPhone16,2", 430, 932, 3.0),
    (0.07, "iPhone 15 Pro", "iPhone16,1", 393, 852, 3.0),
    (0.07, "iPhone 15", "iPhone15,4", 393, 852, 3.0),
    (0.07, "iPhone 14 Pro Max", "iPhone15,3", 430, 932, 3.0),
    (0.06, "iPhone 14 Pro", "iPhone15,2", 393, 852, 3.0),
    (0.05, "iPhone 14", "iPhone14,7", 390, 844, 3.0),
    (0.09, "iPhone 13", "iPhone14,5", 390, 844, 3.0),
    (0.05, "iPhone 13 Pro Max", "iPhone14,3", 428, 926, 3.0),
    (0.06, "iPhone 12", "iPhone13,2", 390, 844, 3.0),
    (0.07, "iPhone 11", "iPhone12,1", 414, 896, 2.0),
    (0.03, "iPhone SE (3rd generation)", "iPhone14,6", 375, 667, 2.0),
    (0.02, "iPhone 13 mini", "iPhone14,4", 375, 812, 3.0),
)
IOS_VERSIONS: Final = (
    (0.28, "26.1"),
    (0.14, "26.0.1"),
    (0.24, "18.6.2"),
    (0.10, "18.5"),
    (0.12, "17.6.1"),
    (0.12, "16.7.10"),
)

# Android phones: (weight, manufacturer, model code, GPU renderer, css w, h, dpr, vendor browser)
ANDROIDS: Final = (
    (0.09, "Xiaomi", "23127PN0CC", "Adreno (TM) 750", 393, 873, 3.0, "miui"),
    (0.07, "Xiaomi", "2312DRA50C", "Adreno (TM) 710", 393, 873, 2.75, "miui"),
    (0.05, "Xiaomi", "23113RKC6C", "Adreno (TM) 740", 412, 915, 2.625, "miui"),
    (0.08, "HUAWEI", "LNA-AL00", "Adreno (TM) 730", 360, 780, 3.5, "huawei"),
    (0.06, "HUAWEI", "NOH-AN00", "Mali-G78", 412, 892, 3.0, "huawei"),
    (0.05, "HONOR", "BVL-AN00", "Adreno (TM) 750", 400, 890, 3.0, "huawei"),
    (0.07, "OPPO", "PHZ110", "Mali-G720-Immortalis MC12", 412, 915, 3.0, "uc"),
    (0.05, "OPPO", "PJH110", "Adreno (TM) 710", 412, 915, 2.625, "uc"),
    (0.07, "vivo", "V2309A", "Mali-G720-Immortalis MC12", 412, 915, 3.5, "qq"),
    (0.05, "vivo", "V2323A", "Adreno (TM) 720", 393, 873, 2.75, "qq"),
    (0.06, "samsung", "SM-S9280", "Adreno (TM) 750", 384, 832, 3.75, "samsung"),
    (0.04, "samsung", "SM-S9110", "Adreno (TM) 740", 360, 780, 3.0, "samsung"),
    (0.04, "samsung", "SM-A5560", "Mali-G68", 384, 854, 2.8125, "samsung"),
    (0.03, "Google", "Pixel 8", "Mali-G715", 412, 915, 2.625, "chrome"),
    (0.02, "Google", "Pixel 7", "Mali-G710", 412, 915, 2.625, "chrome"),
    (0.05, "OnePlus", "PJD110", "Adreno (TM) 750", 412, 915, 3.5, "chrome"),
)
ANDROID_VERSIONS: Final = ((0.35, "14"), (0.30, "15"), (0.20, "13"), (0.10, "12"), (0.05, "16"))
VENDOR_BROWSERS: Final = {
    "miui": ("XiaoMi/MiuiBrowser/{v}", "18.6.70411", 122),
    "huawei": ("HuaweiBrowser/{v}", "15.0.4.312", 114),
    "uc": ("UCBrowser/{v}", "17.6.2.1310", 123),
    "qq": ("MQQBrowser/{v}", "15.6", 123),
    "samsung": ("SamsungBrowser/{v}", "28.0", 130),
}

# (weight, region, time zones (weight, zone), language lists (weight, list), app locale)
REGIONS: Final = (
    (
        0.82,
        "CN",
        ((0.98, "Asia/Shanghai"), (0.02, "Asia/Urumqi")),
        (
            (0.55, ("zh-CN", "zh")),
            (0.25, ("zh-CN",)),
            (0.12, ("zh-CN", "zh", "en")),
            (0.08, ("zh-CN", "en-US", "en")),
        ),
        "zh-CN",
    ),
    (
        0.04,
        "HK",
        ((1.0, "Asia/Hong_Kong"),),
        ((0.5, ("zh-HK", "zh", "en")), (0.3, ("zh-TW", "zh", "en")), (0.2, ("en-US", "en"))),
        "zh-HK",
    ),
    (0.01, "TW", ((1.0, "Asia/Taipei"),), ((1.0, ("zh-TW", "zh")),), "zh-TW"),
    (
        0.04,
        "US",
        (
            (0.45, "America/New_York"),
            (0.2, "America/Chicago"),
            (0.05, "America/Denver"),
            (0.3, "America/Los_Angeles"),
        ),
        ((0.6, ("en-US", "en")), (0.25, ("zh-CN", "zh", "en-US", "en")), (0.15, ("en-US",))),
        "en-US",
    ),
    (
        0.02,
        "GB",
        ((1.0, "Europe/London"),),
        ((0.7, ("en-GB", "en")), (0.3, ("zh-CN", "en-GB"))),
        "en-GB",
    ),
    (
        0.02,
        "SG",
        ((1.0, "Asia/Singapore"),),
        ((0.6, ("en-SG", "en")), (0.4, ("zh-CN", "zh", "en"))),
        "en-SG",
    ),
    (
        0.02,
        "DE",
        ((1.0, "Europe/Berlin"),),
        ((0.7, ("de-DE", "de", "en")), (0.3, ("zh-CN", "de"))),
        "de-DE",
    ),
    (0.01, "JP", ((1.0, "Asia/Tokyo"),), ((1.0, ("ja", "en-US")),), "ja-JP"),
    (
        0.01,
        "AU",
        ((0.6, "Australia/Sydney"), (0.4, "Australia/Melbourne")),
        ((1.0, ("en-AU", "en")),),
        "en-AU",
    ),
    (
        0.01,
        "CA",
        ((0.6, "America/Toronto"), (0.4, "America/Vancouver")),
        ((1.0, ("en-CA", "en")),),
        "en-CA",
    ),
)

WINDOWS_FONTS: Final = (
    "Arial", "Arial Black", "Bahnschrift", "Calibri", "Cambria", "Candara", "Comic Sans MS",
    "Consolas", "Constantia", "Corbel", "Courier New", "Ebrima", "Franklin Gothic Medium",
    "Gabriola", "Georgia", "Impact", "Lucida Console", "Lucida Sans Unicode", "Malgun Gothic",
    "Microsoft JhengHei", "Microsoft YaHei", "MS Gothic", "Palatino Linotype", "Segoe UI",
    "Segoe UI Emoji", "SimSun", "Sylfaen", "Tahoma", "Times New Roman", "Trebuchet MS",
    "Verdana", "Yu Gothic",
)  # fmt: skip
WINDOWS_CHINESE: Final = ("DengXian", "FangSong", "KaiTi", "SimHei")
MAC_FONTS: Final = (
    "American Typewriter", "Apple Color Emoji", "Arial", "Arial Black", "Avenir", "Avenir Next",
    "Baskerville", "Comic Sans MS", "Courier New", "Futura", "Geneva", "Georgia", "Gill Sans",
    "Helvetica", "Helvetica Neue", "Hiragino Sans GB", "Impact", "Menlo", "Monaco", "Optima",
    "PingFang SC", "Songti SC", "STHeiti", "Tahoma", "Times New Roman", "Trebuchet MS", "Verdana",
)  # fmt: skip
IOS_FONTS: Final = (
    "American Typewriter", "Apple Color Emoji", "Arial", "Avenir", "Avenir Next", "Baskerville",
    "Courier New", "Futura", "Georgia", "Gill Sans", "Helvetica", "Helvetica Neue",
    "Hiragino Sans GB", "Menlo", "Optima", "PingFang SC", "Times New Roman", "Trebuchet MS",
    "Verdana",
)  # fmt: skip
ANDROID_FONTS: Final = ("Noto Color Emoji", "Noto Sans CJK SC", "Roboto")
ANDROID_VENDOR_FONTS: Final = {
    "HUAWEI": "HarmonyOS Sans SC",
    "HONOR": "HarmonyOS Sans SC",
    "Xiaomi": "MiSans",
}
LINUX_FONTS: Final = ("DejaVu Sans", "Liberation Sans", "Noto Color Emoji")
# (probability, fonts): software that installs fonts, independently per machine
FONT_BUNDLES: Final = {
    "windows": (
        (
            0.40,
            (
                "Book Antiqua",
                "Bookman Old Style",
                "Century Gothic",
                "Garamond",
                "Gill Sans MT",
                "Lucida Bright",
                "Rockwell",
                "Tw Cen MT",
            ),
        ),
        (0.15, ("Aptos",)),
        (0.30, ("FZShuTi", "LiSu", "STKaiti", "STXihei", "YouYuan")),
        (0.08, ("Adobe Heiti Std", "Adobe Song Std", "Minion Pro", "Myriad Pro")),
        (0.10, ("Source Han Sans CN",)),
        (0.05, ("Fira Code", "JetBrains Mono", "Source Code Pro")),
        (0.05, ("Roboto",)),
    ),
    "macos": (
        (
            0.35,
            (
                "Calibri",
                "Cambria",
                "Candara",
                "Consolas",
                "Constantia",
                "Corbel",
                "Franklin Gothic Medium",
                "Gabriola",
                "Microsoft YaHei",
                "SimSun",
                "DengXian",
            ),
        ),
        (0.10, ("Adobe Heiti Std", "Adobe Song Std", "Minion Pro", "Myriad Pro")),
        (0.10, ("Fira Code", "JetBrains Mono", "Source Code Pro")),
        (0.10, ("Source Han Sans CN",)),
    ),
    "linux": (
        (0.50, ("Noto Sans CJK SC",)),
        (0.50, ("Ubuntu",)),
        (0.30, ("Cantarell",)),
        (0.30, ("Arial", "Courier New", "Times New Roman", "Helvetica")),
        (0.20, ("Fira Code", "JetBrains Mono", "Source Code Pro")),
    ),
}
EXTRA_FONTS_LATER: Final = (
    "Aptos",
    "Fira Code",
    "Source Han Sans CN",
    "Roboto",
    "JetBrains Mono",
    "Myriad Pro",
)

# JA4 values per TLS family (device_fingerprint.ja4 names the families)
JA4: Final = {
    "chromium": (
        "t13d1516h2_8daaf6152771_02713d6af862",
        "t13d1517h2_8daaf6152771_b0da82dd1658",
        "t13d1517h2_8daaf6152771_b1ff8ab2d16f",
    ),
    "firefox": ("t13d1715h2_5b57614c22b0_3d5424432f57", "t13d1715h2_5b57614c22b0_5c2c66f702b0"),
    "apple": (
        "t13d2014h2_a09f3c656075_14788d8d241b",
        "t13d2014h2_a09f3c656075_e42f34c56612",
        "t13d2013h2_a09f3c656075_7f0f34a4126d",
    ),
    "python": ("t13d1812h1_85036bcba153_b26ce05bbdd6", "t13d181100_85036bcba153_d41ae481755e"),
    "openssl": ("t13d3112h2_e8f1e7e78f70_b26ce05bbdd6",),
    "go": ("t13d190900_9dc949149365_97f8aa674fd9",),
    "node": ("t13d591000_a33745022dd6_1f22a2ca17c4",),
    "java": ("t13d3713h2_db35923f8641_7c76daad20ec",),
}
EMULATORS: Final = (
    ("Google", "sdk_gphone64_x86_64", "Android Emulator OpenGL ES Translator (Google SwiftShader)"),
    ("Genymobile", "Genymotion Phone", "Android Emulator OpenGL ES Translator (Mesa)"),
    ("samsung", "SM-S9280", "Adreno (TM) 750"),  # a hidden emulator claiming a real model
)
