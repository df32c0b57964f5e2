"""Checks that BUILD lists every module, entry point and test file (Bazel itself
cannot fetch its rules offline here, so nothing else would notice a stale BUILD)."""

import ast
import glob
import os
import re

import tensorflow as tf

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Directories whose Python files are Bazel targets.
_SOURCE_DIRS = ("tfp_vqvae", "tfp_vqvae/*", "tests", "tests/programs", "export")


def _build_rules():
  """(rule kind, name, srcs, deps) for each rule in BUILD."""
  with open(os.path.join(_ROOT, "BUILD")) as f:
    text = f.read()
  rules = []
  for match in re.finditer(r"^(py_\w+)\((.*?)^\)", text, re.M | re.S):
    kind, body = match.groups()
    name = re.search(r'name = "([^"]+)"', body).group(1)
    lists = {}
    for key in ("srcs", "deps"):
      found = re.search(key + r" = (\[.*?\])", body, re.S)
      lists[key] = ast.literal_eval(found.group(1)) if found else []
    rules.append((kind, name, lists["srcs"], lists["deps"]))
  return rules


class BuildTest(tf.test.TestCase):

  def test_every_python_file_is_in_exactly_one_rule(self):
    listed = [src for _, _, srcs, _ in _build_rules() for src in srcs]
    on_disk = sorted(os.path.relpath(path, _ROOT) for d in _SOURCE_DIRS
                     for path in glob.glob(os.path.join(_ROOT, d, "*.py")))
    self.assertNotEmpty(on_disk)
    self.assertCountEqual(listed, on_disk)

  def test_tests_are_py_tests_and_entry_points_py_binaries(self):
    for kind, name, srcs, _ in _build_rules():
      for src in srcs:
        if src.startswith("tests/") and src.endswith("_test.py"):
          self.assertEqual(kind, "py_test", src)
        if kind == "py_binary":
          self.assertIn("__main__", open(os.path.join(_ROOT, src)).read(), src)

  def test_deps_cover_package_imports(self):
    rule_of = {src: name for _, name, srcs, _ in _build_rules() for src in srcs}
    for _, name, srcs, deps in _build_rules():
      for src in srcs:
        with open(os.path.join(_ROOT, src)) as f:
          text = f.read()
        # `from tfp_vqvae.quantizers import ema`, `from tfp_vqvae.quantizers.ema import X`
        # and the mains' `from tfp_vqvae import train`.
        imported = [(package.replace(".", "/"), module) for package, module in re.findall(
            r"^\s*from (tfp_vqvae(?:\.\w+)?|export) import (\w+)", text, re.M)]
        imported += [tuple(path.replace(".", "/").rsplit("/", 1)) for path in re.findall(
            r"^\s*from (tfp_vqvae\.\w+\.\w+) import \w+", text, re.M)]
        # Tests import their helpers as top-level modules (tests/ is on sys.path).
        imported += [("tests", module) for module in re.findall(r"^import (\w+)$", text, re.M)
                     if os.path.exists(os.path.join(_ROOT, "tests", module + ".py"))]
        for package, module in imported:
          needed = (rule_of.get(f"{package}/{module}.py")
                    or rule_of.get(f"{package}/__init__.py"))
          self.assertIsNotNone(needed, f"{src} imports {package}.{module}, not in BUILD")
          self.assertIn(":" + needed, deps, f"{name} must depend on :{needed} ({src})")

  def test_deps_name_existing_rules(self):
    names = {name for _, name, _, _ in _build_rules()}
    for _, name, _, deps in _build_rules():
      for dep in deps:
        self.assertIn(dep.lstrip(":"), names, f"{name} depends on unknown {dep}")


if __name__ == "__main__":
  tf.test.main()
