import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Every test session trains its own recognizer into a fresh cache: no state leaks in from $HOME."""
    previous = os.environ.get("EMONEG_CACHE")
    os.environ["EMONEG_CACHE"] = str(tmp_path_factory.mktemp("emoneg-cache"))
    yield
    if previous is None:
        os.environ.pop("EMONEG_CACHE", None)
    else:
        os.environ["EMONEG_CACHE"] = previous


@pytest.fixture(scope="session")
def recognizer(_isolated_cache):
    from emoneg_bench.perception.recognizer import default_recognizer

    return default_recognizer()


@pytest.fixture(scope="session")
def engine(recognizer):
    from emoneg_bench.engine import Engine

    return Engine(recognizer)
