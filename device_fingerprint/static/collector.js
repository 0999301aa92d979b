/* ztgate device collector 1.0.0: gathers the signals of schema web-v1.json.
 *
 * window.ztgateDevice.collect() resolves to the payload object (never rejects:
 * a signal the browser refuses is left out or null); collectJSON() to its text.
 * Nothing is sent anywhere by this script: the page decides where the payload goes.
 * Strings and lists are cut to the schema's limits so the payload always validates.
 */
(function () {
  "use strict";
  var VERSION = "1.0.0";
  var FONTS = [
    "Arial", "Arial Black", "Bahnschrift", "Calibri", "Cambria", "Candara", "Comic Sans MS",
    "Consolas", "Constantia", "Corbel", "Courier New", "DengXian", "Ebrima", "FangSong",
    "Franklin Gothic Medium", "Gabriola", "Georgia", "Impact", "KaiTi", "Lucida Console",
    "Lucida Sans Unicode", "Malgun Gothic", "Microsoft JhengHei", "Microsoft YaHei", "MS Gothic",
    "Palatino Linotype", "Segoe UI", "Segoe UI Emoji", "SimHei", "SimSun", "Sylfaen", "Tahoma",
    "Times New Roman", "Trebuchet MS", "Verdana", "Yu Gothic", "Aptos", "Book Antiqua",
    "Bookman Old Style", "Century Gothic", "Garamond", "Gill Sans MT", "Lucida Bright",
    "Rockwell", "Tw Cen MT", "Adobe Heiti Std", "Adobe Song Std", "Minion Pro", "Myriad Pro",
    "Source Han Sans CN", "FZShuTi", "LiSu", "STKaiti", "STXihei", "YouYuan",
    "American Typewriter", "Apple Color Emoji", "Avenir", "Avenir Next", "Baskerville", "Futura",
    "Geneva", "Gill Sans", "Helvetica", "Helvetica Neue", "Hiragino Sans GB", "Menlo", "Monaco",
    "Optima", "PingFang SC", "Songti SC", "STHeiti", "Cantarell", "DejaVu Sans", "Droid Sans",
    "Liberation Sans", "Noto Color Emoji", "Noto Sans CJK SC", "Roboto", "Ubuntu",
    "HarmonyOS Sans SC", "MiSans", "Fira Code", "JetBrains Mono", "Source Code Pro"
  ];
  var AUTOMATION = /^(\$?cdc_|\$wdc_|__webdriver|__driver_|__selenium|_selenium|__fxdriver|_Selenium_IDE|_phantom|callPhantom|__nightmare|domAutomation|__playwright|__pwInitScripts|__puppeteer|_WEBDRIVER_ELEM_CACHE)/;

  function cut(value, max) {
    return typeof value === "string" ? value.slice(0, max) : undefined;
  }

  function strings(list, items, max) {
    var out = [];
    for (var i = 0; list && i < list.length && out.length < items; i++) {
      if (typeof list[i] === "string") out.push(list[i].slice(0, max));
    }
    return out;
  }

  function int(value, max) {
    return typeof value === "number" && isFinite(value) && value >= 0
      ? Math.min(Math.round(value), max) : undefined;
  }

  /* 64-bit non-cryptographic digest: two 32-bit multiplicative lanes (FNV-1a and a
   * golden-ratio variant), hex. Only a compact name for a rendering; the server
   * derives the device id with SM3. */
  function digest(text) {
    var a = 0x811c9dc5, b = 0x9747b28c;
    for (var i = 0; i < text.length; i++) {
      var c = text.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x9e3779b1);
    }
    b = Math.imul(b ^ (b >>> 15), 0x85ebca6b);
    return ("0000000" + (a >>> 0).toString(16)).slice(-8) +
      ("0000000" + (b >>> 0).toString(16)).slice(-8);
  }

  function canvasDigest() {
    try {
      var canvas = document.createElement("canvas");
      canvas.width = 280;
      canvas.height = 60;
      var ctx = canvas.getContext("2d");
      if (!ctx) return null;
      ctx.textBaseline = "alphabetic";
      ctx.fillStyle = "#f60";
      ctx.fillRect(100, 1, 62, 20);
      ctx.fillStyle = "#069";
      ctx.font = "11pt 'Times New Roman', serif";
      ctx.fillText("ztgate \u94f6\u884c \ud83d\udd12 Cwm fjordbank glyphs vext quiz", 2, 15);
      ctx.fillStyle = "rgba(102, 204, 0, 0.7)";
      ctx.font = "18pt Arial, sans-serif";
      ctx.fillText("\u00a9 \u2211 \u03a9 12.5%", 4, 45);
      ctx.globalCompositeOperation = "multiply";
      ctx.beginPath();
      ctx.arc(220, 30, 20, 0, Math.PI * 2, true);
      ctx.closePath();
      ctx.fillStyle = "rgb(255,0,255)";
      ctx.fill();
      return digest(canvas.toDataURL());
    } catch (e) {
      return null;
    }
  }

  function webgl() {
    try {
      var canvas = document.createElement("canvas");
      var gl = canvas.getContext("webgl") || canvas.getContext("experimental-webgl");
      if (!gl) return undefined;
      var info = gl.getExtension("WEBGL_debug_renderer_info");
      var vendor = info ? gl.getParameter(info.UNMASKED_VENDOR_WEBGL) : gl.getParameter(gl.VENDOR);
      var renderer = info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER);
      var names = ["MAX_TEXTURE_SIZE", "MAX_VIEWPORT_DIMS", "MAX_RENDERBUFFER_SIZE",
        "MAX_VERTEX_ATTRIBS", "MAX_VERTEX_UNIFORM_VECTORS", "MAX_FRAGMENT_UNIFORM_VECTORS",
        "MAX_VARYING_VECTORS", "MAX_COMBINED_TEXTURE_IMAGE_UNITS", "ALIASED_LINE_WIDTH_RANGE",
        "ALIASED_POINT_SIZE_RANGE", "SHADING_LANGUAGE_VERSION", "VERSION"];
      var parts = [];
      for (var i = 0; i < names.length; i++) {
        var value = gl.getParameter(gl[names[i]]);
        parts.push(names[i] + "=" + (value && value.length !== undefined && typeof value !== "string"
          ? Array.prototype.join.call(value, ",") : String(value)));
      }
      parts.push((gl.getSupportedExtensions() || []).slice().sort().join(","));
      return { vendor: cut(String(vendor), 128), renderer: cut(String(renderer), 256),
        hash: digest(parts.join(";")) };
    } catch (e) {
      return undefined;
    }
  }

  function audioDigest() {
    return new Promise(function (resolve) {
      var done = false;
      function finish(value) { if (!done) { done = true; resolve(value); } }
      try {
        var Offline = window.OfflineAudioContext || window.webkitOfflineAudioContext;
        if (!Offline) return finish(null);
        var context = new Offline(1, 5000, 44100);
        var oscillator = context.createOscillator();
        oscillator.type = "triangle";
        oscillator.frequency.value = 10000;
        var compressor = context.createDynamicsCompressor();
        compressor.threshold.value = -50;
        compressor.knee.value = 40;
        compressor.ratio.value = 12;
        compressor.attack.value = 0;
        compressor.release.value = 0.25;
        oscillator.connect(compressor);
        compressor.connect(context.destination);
        oscillator.start(0);
        setTimeout(function () { finish(null); }, 1000);
        context.oncomplete = function (event) {
          var data = event.renderedBuffer.getChannelData(0), sum = 0;
          for (var i = 4500; i < 5000; i++) sum += Math.abs(data[i]);
          finish(digest(sum.toString()));
        };
        context.startRendering();
      } catch (e) {
        finish(null);
      }
    });
  }

  function fonts() {
    try {
      var ctx = document.createElement("canvas").getContext("2d");
      if (!ctx) return [];
      var sample = "mmmmmmmmmmlli\u94f6WwQ@", bases = ["monospace", "sans-serif", "serif"], widths = {};
      for (var b = 0; b < bases.length; b++) {
        ctx.font = "72px " + bases[b];
        widths[bases[b]] = ctx.measureText(sample).width;
      }
      var found = [];
      for (var i = 0; i < FONTS.length; i++) {
        for (var j = 0; j < bases.length; j++) {
          ctx.font = "72px '" + FONTS[i] + "', " + bases[j];
          if (ctx.measureText(sample).width !== widths[bases[j]]) { found.push(FONTS[i]); break; }
        }
      }
      return found;
    } catch (e) {
      return [];
    }
  }

  function automation() {
    var globals = [];
    try {
      var names = Object.getOwnPropertyNames(window).concat(Object.getOwnPropertyNames(document));
      for (var i = 0; i < names.length && globals.length < 32; i++) {
        if (AUTOMATION.test(names[i])) globals.push(names[i].slice(0, 64));
      }
    } catch (e) { /* a locked-down window: nothing to report */ }
    return { webdriver: navigator.webdriver === true, globals: globals,
      plugins: int(navigator.plugins ? navigator.plugins.length : 0, 1024) };
  }

  function clientHints() {
    var data = navigator.userAgentData;
    if (!data) return Promise.resolve(undefined);
    var hints = { brands: [], mobile: !!data.mobile, platform: cut(data.platform, 32) };
    (data.brands || []).slice(0, 8).forEach(function (b) {
      hints.brands.push({ brand: String(b.brand).slice(0, 64), version: String(b.version).slice(0, 32) });
    });
    if (!data.getHighEntropyValues) return Promise.resolve(hints);
    return data.getHighEntropyValues(["platformVersion", "architecture", "bitness", "model"])
      .then(function (v) {
        hints.platform_version = cut(v.platformVersion, 32);
        hints.architecture = cut(v.architecture, 16);
        hints.bitness = cut(v.bitness, 8);
        hints.model = cut(v.model, 64);
        return hints;
      }, function () { return hints; });
  }

  function collect() {
    var payload = { kind: "web", collector_version: VERSION, ua: cut(navigator.userAgent, 512) || "-" };
    payload.platform = cut(navigator.platform, 64);
    payload.languages = strings(navigator.languages, 16, 35);
    try {
      payload.tz = cut(Intl.DateTimeFormat().resolvedOptions().timeZone, 64);
    } catch (e) { /* no Intl */ }
    var offset = -new Date().getTimezoneOffset();
    if (offset >= -840 && offset <= 840) payload.tz_offset = offset;
    var s = window.screen || {};
    payload.screen = { w: int(s.width, 100000) || 0, h: int(s.height, 100000) || 0,
      aw: int(s.availWidth, 100000), ah: int(s.availHeight, 100000), depth: int(s.colorDepth, 64),
      dpr: Math.min(Math.max(Number(window.devicePixelRatio) || 0, 0), 32) };
    payload.hw_concurrency = int(navigator.hardwareConcurrency, 4096);
    payload.device_memory = typeof navigator.deviceMemory === "number"
      ? Math.min(Math.max(navigator.deviceMemory, 0), 4096) : undefined;
    payload.touch_points = int(navigator.maxTouchPoints, 256);
    payload.canvas = canvasDigest();
    payload.webgl = webgl();
    payload.fonts = fonts();
    payload.automation = automation();
    return Promise.all([clientHints(), audioDigest()]).then(function (results) {
      payload.uach = results[0];
      payload.audio = results[1];
      return JSON.parse(JSON.stringify(payload)); /* drops the undefined members */
    });
  }

  window.ztgateDevice = Object.freeze({
    version: VERSION,
    collect: collect,
    collectJSON: function () { return collect().then(JSON.stringify); }
  });
})();
