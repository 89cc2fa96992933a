"""What an installed fastgd ships beside its code: one version, type stubs that say what
the modules have, and the py.typed marker."""
import ast
import importlib
import importlib.machinery
import importlib.metadata
import inspect
import re
import types
from pathlib import Path

import pytest

import fastgd
from fastgd import _backend, _cpu, _simd

PACKAGE = Path(fastgd.__file__).parent
IN_SOURCE_TREE = (PACKAGE.parent / "setup.py").exists()
COMPILED = sorted(
    {path.name.split(".")[0] for suffix in importlib.machinery.EXTENSION_SUFFIXES for path in PACKAGE.glob(f"*{suffix}")}
)
PUBLIC_MODULES = ("fastgd", "fastgd.optim", "fastgd.functional", "fastgd.linear_model", "fastgd.reference",
                  "fastgd.lr_scheduler", "fastgd.clip", "fastgd.swa_utils", "fastgd.accumulation", "fastgd.dask")


def test_version_is_the_installed_distributions():
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?", fastgd.__version__)
    assert importlib.metadata.version("fastgd") == fastgd.__version__


def test_py_typed_marker():
    assert (PACKAGE / "py.typed").is_file()


def test_every_compiled_module_has_a_stub():
    expected = {"_cpu"} | {f"_engine_{level}" for level in _backend.built_levels()}
    assert set(COMPILED) == expected
    for name in COMPILED:
        assert (PACKAGE / f"{name}.pyi").is_file(), f"fastgd/{name} has no stub {name}.pyi"


def test_no_stub_without_a_module():
    if IN_SOURCE_TREE:
        pytest.skip("the source tree holds the stubs of every SIMD level, built here or not")
    for stub in PACKAGE.glob("*.pyi"):
        name = stub.stem
        assert name == "__init__" or name in COMPILED or (PACKAGE / f"{name}.py").exists(), stub.name


def test_the_wheel_workflow_checks_the_stubs_of_modules_that_exist():
    """The wheel workflow's stubtest names the public modules (but fastgd.dask: that job has no
    Dask) and the compiled ones as they are named (stubtest passes a module that is not there)."""
    workflow = PACKAGE.parent / ".github" / "workflows" / "wheels.yml"
    if not workflow.exists():
        pytest.skip("the workflow is in the source tree only")
    text = workflow.read_text()
    assert set(re.findall(r"'(fastgd\.\w+)'", text)) == set(PUBLIC_MODULES) - {"fastgd", "fastgd.dask"} | {"fastgd._cpu"}
    assert re.findall(r"f'fastgd\.(\w+)\{level\}'", text) == ["_engine_"]
    assert set(COMPILED) <= {"_cpu"} | {f"_engine_{level}" for level in _simd.LEVELS}


def test_simd_level_stubs_reexport_the_baseline():
    assert (PACKAGE / "_engine_baseline.pyi").exists()
    for level in _simd.LEVELS[1:]:
        stub = PACKAGE / f"_engine_{level}.pyi"
        if stub.exists():
            imports = [node for node in ast.parse(stub.read_text()).body]
            assert len(imports) == 1 and isinstance(imports[0], ast.ImportFrom), stub.name
            assert imports[0].module == "fastgd._engine_baseline" and imports[0].names[0].name == "*", stub.name


def stub_tree(module_name):
    """The stub's syntax tree, with `from fastgd.X import *` replaced by the body of X's stub."""
    name = module_name.rsplit(".", 1)[-1] if module_name != "fastgd" else "__init__"
    tree = ast.parse((PACKAGE / f"{name}.pyi").read_text())
    body = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.names[0].name == "*" and (node.module or "").startswith("fastgd."):
            imported = stub_tree(node.module).body
            exported = stub_all(imported)  # a star import takes the names in __all__, as type checkers do
            body += [item for item in imported if exported is None or set(stub_members([item])) & exported]
        else:
            body.append(node)
    tree.body = body
    return tree


def stub_all(body):
    """The names a stub body's literal `__all__ = [...]` lists, or None without one."""
    for node in body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
                and isinstance(node.value, ast.List)):
            return {element.value for element in node.value.elts}
    return None


def stub_members(body):
    """name -> ast node of the top-level definitions and annotated names of a stub body."""
    members = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            members[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            members[node.target.id] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    members[target.id] = node
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.asname is not None and alias.asname == alias.name:  # explicit re-export
                    members[alias.name] = node
    return members


def stub_parameters(function):
    arguments = function.args
    positional = [arg.arg for arg in arguments.posonlyargs + arguments.args]
    return (positional, len(arguments.defaults), [arg.arg for arg in arguments.kwonlyargs])


def runtime_parameters(function):
    positional, defaults, keyword = [], 0, []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind is parameter.KEYWORD_ONLY:
            keyword.append(parameter.name)
        elif parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            positional.append(parameter.name)
            defaults += parameter.default is not parameter.empty
    return positional, defaults, keyword


def public_runtime_names(module):
    if hasattr(module, "__all__"):
        return set(module.__all__)
    return {
        name for name, value in vars(module).items()
        if not name.startswith("_") and not inspect.ismodule(value)
        and getattr(value, "__module__", module.__name__) == module.__name__
    }


# A module compiled for a SIMD level this CPU lacks must not be imported (its very
# initialisation may use those instructions); its stub re-exports the baseline's (checked above).
RUNNABLE = ["_cpu"] + [f"_engine_{level}" for level in _backend.built_levels() if level in _cpu.supported_levels()]


@pytest.mark.parametrize("module_name", [f"fastgd.{name}" for name in RUNNABLE])
def test_compiled_module_stubs_match(module_name):
    module = importlib.import_module(module_name)
    members = stub_members(stub_tree(module_name).body)
    public = {name for name in dir(module) if not name.startswith("_") and not inspect.ismodule(getattr(module, name))}
    assert public == set(members), f"{module_name}: stub and module disagree on {public ^ set(members)}"
    for name, node in members.items():
        if isinstance(node, ast.FunctionDef):
            assert stub_parameters(node) == runtime_parameters(getattr(module, name)), f"{module_name}.{name}"


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_module_stubs_match(module_name):
    if module_name in ("fastgd.linear_model", "fastgd.reference"):
        pytest.importorskip("sklearn")
    if module_name == "fastgd.dask":
        pytest.importorskip("distributed")
    module = importlib.import_module(module_name)
    members = stub_members(stub_tree(module_name).body)
    missing = public_runtime_names(module) - set(members)
    assert not missing, f"{module_name}: the stub lacks {sorted(missing)}"
    # the stub's __all__, a literal list that names them all (`__all__ += optim.__all__` went
    # unread by mypy: `from fastgd import *` then left Adam and the rest undefined)
    if hasattr(module, "__all__"):
        own = ast.parse((PACKAGE / f"{'__init__' if module_name == 'fastgd' else module_name.rsplit('.', 1)[-1]}.pyi")
                        .read_text())
        assert not any(isinstance(node, ast.AugAssign) and getattr(node.target, "id", None) == "__all__"
                       for node in own.body), f"{module_name}: the stub adds to __all__"
        assert stub_all(own.body) == set(module.__all__), f"{module_name}: the stub's __all__ is not the module's"
    for name, node in members.items():
        if name.startswith("_") and not name.startswith("__") and not hasattr(module, name):
            continue  # a type alias of the stub's own
        value = getattr(module, name)  # the stub names nothing public that the module does not have
        if isinstance(node, ast.FunctionDef):
            assert stub_parameters(node) == runtime_parameters(value), f"{module_name}.{name}"
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    assert item.name in vars(value) or any(item.name in vars(base) for base in value.__mro__), (
                        f"{module_name}.{name}.{item.name} is in the stub only"
                    )
                    if any(isinstance(d, ast.Name) and d.id == "overload" for d in item.decorator_list):
                        continue  # one of a method's typings (CI's stubtest checks them against the method)
                    if item.decorator_list:  # a property and its setter (a slot, typed as one: Parameter.data)
                        assert isinstance(getattr(value, item.name), (property, types.MemberDescriptorType)), (
                            f"{module_name}.{name}.{item.name}")
                        continue
                    got = runtime_parameters(getattr(value, item.name))
                    assert stub_parameters(item) == got, f"{module_name}.{name}.{item.name}"
