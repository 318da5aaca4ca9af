from qwenkit.store.catalog import ALIASES, CATALOG, gguf_pattern, lookup
from qwenkit.store.names import parse_name


def test_catalog_covers_the_releases():
    names = set(CATALOG)
    for size in ("0.5b", "1.5b", "3b", "7b"):
        assert {f"qwen2.5:{size}", f"qwen2.5:{size}-q4_k_m", f"qwen2.5:{size}-q8_0"} <= names
    for size in ("0.6b", "1.7b", "4b", "8b", "30b-a3b"):
        assert f"qwen3:{size}" in names and f"qwen3:{size}-q8_0" in names
    assert CATALOG["qwen2.5:0.5b"].repo == "Qwen/Qwen2.5-0.5B-Instruct"
    assert CATALOG["qwen2.5:0.5b-q4_k_m"].repo == "Qwen/Qwen2.5-0.5B-Instruct-GGUF"
    assert CATALOG["qwen3:30b-a3b"].repo == "Qwen/Qwen3-30B-A3B"
    assert all(lookup(parse_name(a)) for a in ALIASES)


def test_official_gguf_file_names_match():
    import fnmatch
    def matches(name, file):
        return fnmatch.fnmatchcase(file.lower(), CATALOG[name].patterns[0].lower())
    assert matches("qwen2.5:0.5b-q4_k_m", "qwen2.5-0.5b-instruct-q4_k_m.gguf")
    assert matches("qwen2.5:7b-q4_k_m", "qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf")
    assert not matches("qwen2.5:0.5b-q4_k_m", "qwen2.5-0.5b-instruct-q4_0.gguf")
    assert matches("qwen3:0.6b-q8_0", "Qwen3-0.6B-Q8_0.gguf")
    assert CATALOG["qwen3:30b-a3b-q4_k_m"].patterns == ("Qwen3-30B-A3B-Q4_K_M*.gguf",)
    assert gguf_pattern(CATALOG["qwen3:8b"].release, "q4_k_m") == "Qwen3-8B-Q4_K_M*.gguf"
