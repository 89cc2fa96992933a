"""The README's API reference matches the code: every public name is documented, and
every signature written there is the one the code has."""
import ast
import inspect
import re
from pathlib import Path

import pytest

import fastgd
from fastgd import functional, lr_scheduler, optim

README = Path(__file__).resolve().parent.parent / "README.md"
OPTIMIZERS = ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "Adadelta", "Lion", "RAdam", "NAdam")


@pytest.fixture(scope="module")
def reference_text():
    if not README.exists():
        pytest.fail(f"{README} is missing: run the tests from a checkout or sdist, or copy README.md beside tests/")
    text = README.read_text(encoding="utf-8")
    assert "## API reference" in text, "README.md has no '## API reference' section"
    return text[text.index("## API reference"):]


def code_spans(text):
    return re.findall(r"`([^`]+)`", text)


def documented_signature(text, name):
    """The parameters of `name(...)` as written in the reference, as an ast.arguments."""
    for span in code_spans(text):
        if re.fullmatch(rf"{re.escape(name)}\(.*\)", span):
            arguments = span[len(name) + 1:-1]
            return ast.parse(f"def f({arguments}): pass").body[0].args
    pytest.fail(f"README's API reference has no signature `{name}(...)`")


def signature_of(arguments):
    """(name, kind, default) for each parameter of an ast.arguments, defaults evaluated."""
    positional = arguments.posonlyargs + arguments.args
    defaults = [inspect.Parameter.empty] * (len(positional) - len(arguments.defaults)) + [
        ast.literal_eval(node) for node in arguments.defaults
    ]
    result = [(arg.arg, "positional", default) for arg, default in zip(positional, defaults)]
    for arg, default in zip(arguments.kwonlyargs, arguments.kw_defaults):
        result.append((arg.arg, "keyword", inspect.Parameter.empty if default is None else ast.literal_eval(default)))
    return result


def code_signature(function):
    result = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.name == "self":
            continue
        kind = "keyword" if parameter.kind is parameter.KEYWORD_ONLY else "positional"
        result.append((parameter.name, kind, parameter.default))
    return result


def test_every_public_name_is_documented(reference_text):
    spans = " ".join(code_spans(reference_text))
    for name in fastgd.__all__:
        assert re.search(rf"(?<![\w.]){re.escape(name)}\b", spans), f"fastgd.{name} is not in README's API reference"


@pytest.mark.parametrize("name", [*OPTIMIZERS, "Optimizer", "Parameter", "EMA", "SWA", "SWALR", "MultiSteps"])
def test_class_signatures_match(reference_text, name):
    cls = getattr(fastgd, name)
    assert signature_of(documented_signature(reference_text, name)) == code_signature(cls.__init__)


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop", "adagrad", "adamax", "adadelta", "lion", "radam", "nadam"])
def test_functional_signatures_match(reference_text, name):
    documented = documented_signature(reference_text, f"functional.{name}")
    assert signature_of(documented) == code_signature(getattr(functional, name))


def public_methods(cls, package_only=True):
    names = set()
    for klass in cls.__mro__:
        if package_only and not klass.__module__.startswith("fastgd"):
            continue
        names |= {name for name, value in vars(klass).items() if not name.startswith("_") and callable(value)}
    return names


def test_optimizer_methods_and_attributes_are_documented(reference_text):
    spans = code_spans(reference_text)
    for name in sorted(public_methods(optim.Optimizer)):
        signature = code_signature(getattr(optim.Optimizer, name))
        written = ", ".join(p if d is inspect.Parameter.empty else f"{p}={d!r}" for p, _, d in signature)
        expected = f"opt.{name}({written})"
        assert expected in spans, f"Optimizer.{name}: README should show `{expected}`"
    opt = fastgd.SGD([__import__("numpy").zeros(1)])
    attributes = [name for name in vars(opt) if not name.startswith("_")]
    for name in attributes:
        assert any(f"opt.{name}" in span for span in spans), f"optimizer attribute {name} is not documented"
    for name in OPTIMIZERS:
        assert public_methods(getattr(fastgd, name)) == public_methods(optim.Optimizer), (
            f"{name} has public methods of its own: document them"
        )


@pytest.mark.parametrize("name", ["LinearRegression", "LogisticRegression"])
def test_estimators_are_documented(reference_text, name):
    pytest.importorskip("sklearn")
    cls = getattr(fastgd, name)
    spans = code_spans(reference_text)
    joined = " ".join(spans)
    for method in sorted(public_methods(cls)):
        assert re.search(rf"(?<![\w.]){method}\(", joined), f"{name}.{method} is not in README's API reference"
    for method in ("score", "get_params", "set_params"):
        assert f"{method}(" in joined
    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", reference_text, flags=re.M))
    for parameter in inspect.signature(cls.__init__).parameters.values():
        if parameter.name == "self":
            continue
        assert parameter.name in rows, f"{name} parameter {parameter.name} is not in the estimator parameter table"
        assert ast.literal_eval(rows[parameter.name]) == parameter.default, (
            f"{name}({parameter.name}=...): README says {rows[parameter.name]}, the code {parameter.default!r}"
        )
        assert parameter.kind is parameter.KEYWORD_ONLY


@pytest.mark.parametrize("name", ["LinearRegression", "LogisticRegression", "SGDClassifier", "SGDRegressor"])
def test_estimator_docstrings_document_every_parameter(name):
    """help(estimator) has a numpydoc Parameters section naming each constructor parameter once,
    and where it gives a default, the code's."""
    pytest.importorskip("sklearn")
    cls = getattr(fastgd, name)
    section = inspect.cleandoc(cls.__doc__).split("Parameters\n----------\n", 1)[1]
    named = {}
    for line in section.splitlines():
        if line and not line.startswith(" "):  # an entry: "a, b : type, default=x, y" or "a, b"
            names, _, kind = line.partition(" : ")
            defaults = kind.split("default=", 1)[1].split(", ") if "default=" in kind else []
            for i, parameter in enumerate(names.split(", ")):
                assert parameter not in named, f"{name}: {parameter} documented twice"
                named[parameter] = defaults[min(i, len(defaults) - 1)] if defaults else None
    parameters = {p.name: p.default for p in inspect.signature(cls).parameters.values()}
    assert set(named) == set(parameters)
    for parameter, default in named.items():
        if default is not None:
            assert ast.literal_eval(default) == parameters[parameter], f"{name}({parameter}=...)"


def test_reference_module_is_documented(reference_text):
    from fastgd import reference

    joined = " ".join(code_spans(reference_text))
    for name in reference.__all__:
        if name != "Parameter":
            assert re.search(rf"reference\.[\w /]*\b{name}\b", joined), f"reference.{name} is not documented"


@pytest.mark.parametrize("name", lr_scheduler.__all__)
def test_scheduler_signatures_match(reference_text, name):
    """The README writes 1.0 / 3 for ConstantLR's and LinearLR's default, as torch does: the
    defaults are evaluated as expressions of numbers."""
    arguments = documented_signature(reference_text, f"lr_scheduler.{name}")
    positional = arguments.posonlyargs + arguments.args
    defaults = [inspect.Parameter.empty] * (len(positional) - len(arguments.defaults)) + [
        eval(compile(ast.Expression(node), "README", "eval"), {"__builtins__": {}}) for node in arguments.defaults
    ]
    documented = [(arg.arg, "positional", default) for arg, default in zip(positional, defaults)]
    assert not arguments.kwonlyargs
    assert documented == code_signature(getattr(lr_scheduler, name).__init__)
