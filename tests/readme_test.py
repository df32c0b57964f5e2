"""Runs and checks the three user docs: README.md, export/README.md, flags/README.md.

Every ```python snippet is run as printed (`_SNIPPET_TESTS` says by which test), and
every command (```sh blocks, inline `python -m tfp_vqvae.X ...` / `tfp-vqvae-X ...`
spans, the flagfiles' header comments) must name a program that exists and flags
that program defines. The snippets may use only the public API (`import tfp_vqvae
as tv`), so that they survive the package's module moves.
"""

import concurrent.futures
import functools
import glob
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

import test_util

_README = os.path.join(test_util.ROOT, "README.md")
_DOCS = ("README.md", "export/README.md", "flags/README.md")
_MAX_README_LINES = 400
# .ci/run runs this command; README.md must show it verbatim.
_TEST_COMMAND = "python -m pytest -q -n 2 --dist loadscope tests"

# Every python snippet of the docs, by (doc, heading above it): the test that runs it.
_SNIPPET_TESTS = {
    ("README.md", "### (b) The EMA quantizer in your own `tf.Module`, trained with a "
                  "GradientTape"): "test_quantizer_in_own_module_trains",
    ("README.md", "### (c) The Keras layer in `keras.Model.fit`"):
        "test_keras_layer_in_model_fit",
    ("README.md", "### (e) Load a trained model"): "test_loading_a_trained_model",
    # Run by tests/hierarchical_test.py (ReadmeSnippetTest) through readme_snippet.
    ("README.md", "## VQ-VAE-2"): None,
    ("export/README.md", "## Call it"): "test_python_client_and_client_cli_on_the_stand_in",
    ("export/README.md", "## Use the SavedModel from other TensorFlow code"):
        "test_saved_model_from_other_tensorflow_code",
}

# Programs the docs may run that are not ours; their flags are not checked.
_EXTERNAL_PROGRAMS = {".", "source", "bash", "pip", "docker", "tensorflow_model_server",
                      "tensorboard", "for", "do", "done", "wait"}
_EXTERNAL_MODULES = {"pytest", "venv"}
# Flags of those programs that the prose mentions.
_EXTERNAL_FLAGS = {"dist", "gpus", "logdir", "port", "rest_api_port", "model_name", "model_base_path",
                   "model_config_file", "enable_batching", "batching_parameters_file"}
_ABSL_BUILTIN_FLAGS = {"flagfile", "help", "helpfull", "helpshort", "helpxml"}


def _path(doc):
  return os.path.join(test_util.ROOT, doc)


@functools.lru_cache(maxsize=None)
def _text(doc):
  with open(_path(doc)) as f:
    return f.read()


def readme_snippet(heading: str, doc: str = "README.md") -> str:
  """The first ```python block after the line `heading` of `doc` (README.md)."""
  text = _text(doc)
  start = text.index("\n" + heading + "\n")
  return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


def _blocks(doc):
  """[(heading above it, language, code)] of every fenced block of `doc`."""
  blocks, heading, language, code = [], None, None, None
  for line in _text(doc).splitlines():
    if code is not None:
      if line.startswith("```"):
        blocks.append((heading, language, "\n".join(code) + "\n"))
        code = None
      else:
        code.append(line)
    elif line.startswith("```"):
      language, code = line[3:].strip(), []
    elif line.startswith("#"):
      heading = line
  assert code is None, f"{doc}: unclosed code block"
  return blocks


def _prose(doc):
  """`doc` without its fenced blocks."""
  return re.sub(r"^```.*?^```", "", _text(doc), flags=re.S | re.M)


def _variables(doc):
  """{NAME: value} of the `NAME="..."` lines of `doc`'s sh blocks."""
  variables = {}
  for _, language, code in _blocks(doc):
    if language == "sh":
      variables.update(re.findall(r'^([A-Z_]+)="([^"]*)"$', code, re.M))
  return variables


def _commands(code, variables):
  """The simple commands (token lists) of shell text: continuations joined, comments
  dropped, `$NAME` of `variables` expanded, split at `&&`, `;`, `|` and `&`."""
  code = re.sub(r"\\\n", " ", code)
  code = re.sub(r"\$([A-Z_]+)\b",
                lambda match: variables.get(match.group(1), match.group(0)), code)
  commands = []
  for line in code.splitlines():
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    command = []
    for token in list(lexer) + [";"]:
      if token in (";", "&&", "&", "|", "||"):
        if command:
          commands.append(command)
        command = []
      else:
        command.append(token)
  return commands


def _header_commands(flagfile):
  """The commands in a flagfile's header comment (lines `#   python -m ...`)."""
  header = []
  for line in _flagfile_header(flagfile):
    header.append(line[1:].strip())
  text = "\n".join(header)
  return [line for line in re.sub(r"\\\n", " ", text).splitlines()
          if re.match(r"(python -m tfp_vqvae\.|tfp-vqvae-)", line)]


def _flagfile_header(flagfile):
  lines = []
  with open(flagfile) as f:
    for line in f:
      if not line.startswith("#"):
        break
      lines.append(line.rstrip("\n"))
  return lines


@functools.lru_cache(maxsize=None)
def _entry_points():
  """{console script: (module, function)} from setup.py."""
  with open(os.path.join(test_util.ROOT, "setup.py")) as f:
    text = f.read()
  return {name: (module, function) for name, module, function in
          re.findall(r'"(tfp-vqvae-[\w-]+) = ([\w.]+):(\w+)"', text)}


def _module_exists(module):
  try:
    return importlib.util.find_spec(module) is not None
  except ModuleNotFoundError:
    return False


@functools.lru_cache(maxsize=None)
def _flags_of(program):
  """The flag names `program` (a module or a script path) accepts, from --helpxml
  (absl) or else --help (argparse)."""
  if program.endswith(".py"):
    with open(os.path.join(test_util.ROOT, program)) as f:
      return frozenset(re.findall(r'DEFINE_\w+\(\s*"(\w+)"', f.read()))
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  result = subprocess.run([sys.executable, "-m", program, "--helpxml"],
                          capture_output=True, text=True, timeout=600, env=env)
  # A program with a required flag prints the XML, then exits 1 for the missing flag.
  if "<name>" in result.stdout:
    return frozenset(re.findall(r"<name>(\w+)</name>", result.stdout))
  result = subprocess.run([sys.executable, "-m", program, "--help"],
                          capture_output=True, text=True, timeout=600, env=env)
  assert result.returncode == 0, f"{program} --help failed:\n{result.stderr[-2000:]}"
  return frozenset(name.replace("-", "_") for name in
                   re.findall(r"--([a-z][\w-]*)", result.stdout))


def _all_commands():
  """[(where, tokens)] of every command in the docs and flagfile headers."""
  found = []
  for doc in _DOCS:
    variables = _variables(doc)
    for heading, language, code in _blocks(doc):
      if language == "sh":
        found += [(f"{doc} {heading}", tokens) for tokens in _commands(code, variables)]
    for span in re.findall(r"`([^`]+)`", _prose(doc)):
      if re.match(r"(python -m tfp_vqvae\.\w+|tfp-vqvae-[\w-]+)\s", span):
        span = " ".join(span.split())  # An inline span may wrap across lines.
        found += [(f"{doc} `{span}`", tokens) for tokens in _commands(span, variables)]
  for flagfile in sorted(glob.glob(os.path.join(test_util.FLAGS_DIR, "*.cfg"))):
    for line in _header_commands(flagfile):
      found += [(os.path.relpath(flagfile, test_util.ROOT), tokens)
                for tokens in _commands(line, {})]
  return found


@functools.lru_cache(maxsize=None)
def _program_flags():
  """{program: its flag names} for every console script's module and every
  tfp_vqvae module or tests/ script a command of the docs runs."""
  programs = {module for module, _ in _entry_points().values()}
  programs |= {program for program, _ in map(_program, (t for _, t in _all_commands()))
               if program and program.startswith(("tfp_vqvae.", "tests/"))
               and (program.endswith(".py") or _module_exists(program))}
  # The --helpxml runs take several seconds each: two at a time.
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    return dict(zip(sorted(programs), pool.map(_flags_of, sorted(programs))))


def _program(tokens):
  """(program, arguments) of a command: a module, a script, a console script's
  module, or an external program name; leading VAR=value words dropped."""
  while tokens and re.match(r"[A-Za-z_]\w*=", tokens[0]):
    tokens = tokens[1:]
  if not tokens:
    return None, []
  if tokens[0] in ("python", "python3"):
    if tokens[1] == "-m":
      return tokens[2], tokens[3:]
    return tokens[1], tokens[2:]
  if tokens[0] in _entry_points():
    return _entry_points()[tokens[0]][0], tokens[1:]
  return tokens[0], tokens[1:]


def _flag_names(arguments):
  return [argument[2:].split("=")[0] for argument in arguments
          if argument.startswith("--")]


def _run_program(code, cwd):
  """Runs `code` as a program file in `cwd`; returns its stdout."""
  path = os.path.join(cwd, "snippet.py")
  with open(path, "w") as f:
    f.write(code)
  result = subprocess.run([sys.executable, path], cwd=cwd, capture_output=True,
                          text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


def _run_console_script(tokens, cwd):
  """Runs a `tfp-vqvae-X ...` command line as setup.py's entry point runs it."""
  module, function = _entry_points()[tokens[0]]
  code = (f"import sys; sys.argv[0] = {tokens[0]!r}; "
          f"from {module} import {function}; {function}()")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  result = subprocess.run([sys.executable, "-c", code, *tokens[1:]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, f"{' '.join(tokens)}:\n{result.stderr[-3000:]}"
  return result.stdout


class ReadmeTest(tf.test.TestCase):
  """The snippets that need no trained model, and the docs' static checks."""

  def test_quantizer_in_own_module_trains(self):
    code = readme_snippet("### (b) The EMA quantizer in your own `tf.Module`, trained "
                          "with a GradientTape")
    output = _run_program(code, self.get_temp_dir())
    match = re.search(r"loss ([\d.]+), code perplexity ([\d.]+) of 32", output)
    self.assertIsNotNone(match, output)
    self.assertGreater(float(match.group(2)), 2.0)  # more than one code in use

  def test_keras_layer_in_model_fit(self):
    code = readme_snippet("### (c) The Keras layer in `keras.Model.fit`")
    namespace = {}
    cwd = os.getcwd()
    os.chdir(self.get_temp_dir())  # The snippet saves vqvae.keras where it runs.
    try:
      exec(compile(code, _README, "exec"), namespace)  # pylint: disable=exec-used
    finally:
      os.chdir(cwd)
    self.assertEqual(namespace["codes"].shape, (8, 7, 7))
    self.assertEqual(namespace["codes"].dtype, tf.int32)
    history = namespace["model"].history.history["loss"]
    self.assertLess(history[-1], history[0])
    self.assertEqual(int(namespace["vq"].num_updates.numpy()), 2 * 256 // 32)
    images = namespace["images"][:8]
    self.assertAllEqual(namespace["restored"].predict(images, verbose=0),
                        namespace["model"].predict(images, verbose=0))
    self.assertGreater(len(np.unique(namespace["codes"].numpy())), 1)

  def test_every_python_snippet_is_run_by_a_test(self):
    snippets = [(doc, heading) for doc in _DOCS
                for heading, language, _ in _blocks(doc) if language == "python"]
    self.assertCountEqual(snippets, list(_SNIPPET_TESTS))
    for test in filter(None, _SNIPPET_TESTS.values()):
      self.assertTrue(any(hasattr(cls, test) for cls in (ReadmeTest, TrainedModelTest)),
                      test)
    for doc in _DOCS:
      for heading, language, _ in _blocks(doc):
        self.assertIn(language, ("python", "sh"), f"{doc} {heading}: ```{language}")

  def test_snippets_use_only_the_public_api(self):
    import tfp_vqvae as tv  # pylint: disable=g-import-not-at-top
    for doc in _DOCS:
      for heading, language, code in _blocks(doc):
        if language != "python":
          continue
        with self.subTest(doc=doc, heading=heading):
          mentions = re.findall(r"^.*tfp_vqvae.*$", code, re.M)
          self.assertEqual([m for m in mentions if m != "import tfp_vqvae as tv"], [])
          for name in re.findall(r"\btv\.(\w+)", code):
            self.assertIn(name, tv.__all__)
      # The prose's tv.X too.
      for name in re.findall(r"\btv\.(\w+)", _prose(doc)):
        self.assertIn(name, tv.__all__ + ["__all__"], doc)

  def test_commands_name_existing_programs_flags_and_flagfiles(self):
    defined = _program_flags()
    self.assertIn("tfp_vqvae.train", defined)
    for where, tokens in _all_commands():
      program, arguments = _program(tokens)
      if program is None or program in _EXTERNAL_PROGRAMS | _EXTERNAL_MODULES:
        continue
      with self.subTest(where=where, command=" ".join(tokens)):
        self.assertFalse(program.startswith("export."),
                         "python -m export.* only works inside the checkout")
        self.assertIn(program, defined, "not a tfp_vqvae program or a known tool")
        for name in _flag_names(arguments):
          known = defined[program] | _ABSL_BUILTIN_FLAGS
          self.assertTrue(name in known or (name.startswith("no") and name[2:] in known),
                          f"{program} has no flag --{name}")
        for i, argument in enumerate(arguments):
          if argument.startswith("--flagfile"):
            path = argument.split("=", 1)[1] if "=" in argument else arguments[i + 1]
            self.assertTrue(os.path.isfile(os.path.join(test_util.ROOT, path)), path)

  def test_programs_mentioned_anywhere_exist(self):
    for doc in _DOCS:
      text = _text(doc)
      for module in re.findall(r"python -m (tfp_vqvae\.\w+)", text):
        self.assertTrue(_module_exists(module), f"{doc}: {module}")
      for script in re.findall(r"\b(tfp-vqvae-[a-z-]*[a-z])", text):
        self.assertIn(script, _entry_points(), doc)
      self.assertNotIn("python -m export.", text, doc)

  def test_prose_flags_exist(self):
    known = set().union(*_program_flags().values()) | _EXTERNAL_FLAGS | _ABSL_BUILTIN_FLAGS
    texts = {doc: _text(doc) for doc in _DOCS}
    for flagfile in glob.glob(os.path.join(test_util.FLAGS_DIR, "*.cfg")):
      texts[os.path.basename(flagfile)] = "\n".join(_flagfile_header(flagfile))
    for where, text in texts.items():
      unknown = [name for name in re.findall(r"(?<![\w-])--([a-z][\w-]*)", text)
                 if name.replace("-", "_") not in known]
      self.assertEqual(unknown, [], f"{where}: flags no program defines")

  def test_readme_is_short(self):
    with open(_README) as f:
      lines = f.read().splitlines()
    self.assertLessEqual(len(lines), _MAX_README_LINES)

  def test_the_test_command_is_the_one_ci_runs(self):
    commands = [block for heading, language, block in _blocks("README.md")
                if language == "sh" and heading in ("## Two commands", "## Tests")]
    self.assertLen([c for c in commands if _TEST_COMMAND in c], 2)
    with open(os.path.join(test_util.ROOT, ".ci", "run")) as f:
      self.assertIn("\n" + _TEST_COMMAND + "\n", f.read())

  def test_every_flagfile_has_a_row_in_flags_readme(self):
    rows = re.findall(r"^\| `(flags/[\w.]+)` \|", _text("flags/README.md"), re.M)
    on_disk = sorted(os.path.relpath(path, test_util.ROOT)
                     for path in glob.glob(os.path.join(test_util.FLAGS_DIR, "*.cfg")))
    self.assertNotEmpty(on_disk)
    self.assertCountEqual(rows, on_disk)

  def test_flagfile_headers_carry_their_command_and_measured_result(self):
    for flagfile in sorted(glob.glob(os.path.join(test_util.FLAGS_DIR, "*.cfg"))):
      name = os.path.relpath(flagfile, test_util.ROOT)
      with self.subTest(flagfile=name):
        self.assertTrue(any(f"--flagfile {name} " in line + " "
                            for line in _header_commands(flagfile)),
                        f"{name}: no `python -m tfp_vqvae.X --flagfile {name}` line")
        self.assertTrue(any(line.startswith("# Measured") for line in
                            _flagfile_header(flagfile)), f"{name}: no '# Measured' line")

  def test_relative_links_point_at_existing_files_and_headings(self):
    for doc in _DOCS:
      prose = re.sub(r"`[^`]*`", "", _prose(doc))
      for target in re.findall(r"\]\(([^)\s]+)\)", prose):
        if re.match(r"\w+://", target):
          continue
        path, _, anchor = target.partition("#")
        linked = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
        with self.subTest(doc=doc, target=target):
          self.assertTrue(os.path.exists(_path(linked)), linked)
          if anchor:
            headings = re.findall(r"^#+ (.*)$", _text(linked), re.M)
            slugs = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}
            self.assertIn(anchor, slugs)


class TrainedModelTest(tf.test.TestCase):
  """The snippets and commands that need a trained model, its export, the stand-in."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    import tfp_vqvae as tv  # pylint: disable=g-import-not-at-top
    cls.workdir = tempfile.mkdtemp(prefix="readme_test_")
    cls.model_dir = os.path.join(cls.workdir, "runs", "kmnist")
    test_util.train_tiny_model(cls.model_dir, num_embeddings=16)
    cls.export_dir = tv.export_saved_model(cls.model_dir,
                                           os.path.join(cls.workdir, "models", "vqvae"))

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.workdir, ignore_errors=True)
    super().tearDownClass()

  def test_loading_a_trained_model(self):
    output = _run_program(readme_snippet("### (e) Load a trained model"), self.workdir)
    self.assertRegex(output, r"^\(2, 7, 7\) \(2, 28, 28, 1\) 16 \S*runs/kmnist/ckpt-\d+\n$")

  def test_saved_model_from_other_tensorflow_code(self):
    self.assertEqual(self.export_dir, os.path.join(self.workdir, "models", "vqvae", "1"))
    code = readme_snippet("## Use the SavedModel from other TensorFlow code",
                          "export/README.md")
    output = _run_program(code, self.workdir)
    self.assertIn("(2, 7, 7) (2, 28, 28, 1) [", output)

  def test_signature_table_matches_the_export(self):
    loaded = tf.saved_model.load(self.export_dir)
    config = test_util.smoke_config()
    sizes = {"B": None, "D": config.model.embedding_dim}
    rows = re.findall(r"^\| `(\w+)`( \(with `--prior_dir`\))? \|\s*(.*?)\s*\|\s*(.*?)\s*\|$",
                      _text("export/README.md"), re.M)
    documented = {name: (inputs, outputs) for name, prior, inputs, outputs in rows
                  if not prior}
    self.assertCountEqual(documented, loaded.signatures.keys())
    self.assertCountEqual([name for name, prior, _, _ in rows if prior],
                          ["sample", "log_prob_codes"])

    def tensors(cell):
      return {name: (dtype, [sizes[d] if d in sizes else int(d) for d in shape.split(", ")])
              for name, dtype, shape in re.findall(r"`(\w+)` (\w+) \[([^\]]*)\]", cell)}

    for name, (inputs, outputs) in documented.items():
      if "same function as" in inputs:
        inputs, outputs = documented[re.search(r"`(\w+)`", inputs).group(1)]
      function = loaded.signatures[name]
      with self.subTest(signature=name):
        actual_inputs = {key: (spec.dtype.name, spec.shape.as_list())
                         for key, spec in function.structured_input_signature[1].items()}
        actual_outputs = {key: (spec.dtype.name, spec.shape.as_list())
                          for key, spec in function.structured_outputs.items()}
        self.assertEqual(tensors(inputs), actual_inputs)
        self.assertEqual(tensors(outputs), actual_outputs)

  def test_python_client_and_client_cli_on_the_stand_in(self):
    # The stand-in as export/README.md starts it, on free ports.
    (command,) = [tokens for heading, language, code in _blocks("export/README.md")
                  if heading == "## The stand-in server" and language == "sh"
                  for tokens in _commands(code, {})]
    arguments = dict(zip(command[2::2], command[3::2]))
    self.assertEqual(command[:2], ["python", "tests/prediction_server.py"])
    self.assertCountEqual(arguments, ["--export_dir", "--port", "--rest_api_port"])
    arguments.update({"--export_dir": self.export_dir, "--port": "0",
                      "--rest_api_port": "0", "--lifetime_seconds": "600"})
    server = subprocess.Popen(
        [sys.executable, os.path.join(test_util.ROOT, command[1]),
         *[part for item in arguments.items() for part in item]],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    try:
      line = server.stdout.readline()
      address = re.search(r"gRPC (127\.0\.0\.1:\d+)", line)
      self.assertIsNotNone(address, line)
      address = address.group(1)

      code = readme_snippet("## Call it", "export/README.md")
      self.assertIn('"localhost:8500"', code)
      output = _run_program(code.replace("localhost:8500", address), self.workdir)
      self.assertEqual(output, "(28, 28, 1) (16, 7, 7) (16, 28, 28, 1) (16,)\n")

      self._run_client_commands(address)
    finally:
      server.terminate()
      server.wait(timeout=60)
      server.stdout.close()

  def _run_client_commands(self, address):
    """The `tfp-vqvae-client` lines of export/README.md "Call it", on files made
    for them, against the stand-in at `address`."""
    cwd = os.path.join(self.workdir, "client")
    os.makedirs(os.path.join(cwd, "photos"))
    rng = np.random.default_rng(0)
    image = lambda: rng.integers(0, 256, (28, 28, 1), dtype=np.uint8)
    tf.io.write_file(os.path.join(cwd, "a.png"), tf.io.encode_png(image()))
    for path in ("b.jpg", "photos/1.jpg", "photos/2.jpg"):
      tf.io.write_file(os.path.join(cwd, path), tf.io.encode_jpeg(image()))
    np.save(os.path.join(cwd, "images.npy"), np.stack([image() for _ in range(3)]))
    (block,) = [code for heading, language, code in _blocks("export/README.md")
                if heading == "## Call it" and language == "sh"]
    commands = _commands(block, {})
    self.assertEqual([tokens[3] for tokens in commands],
                     ["encode", "decode", "reconstruct", "neg_elbo"])
    outputs = []
    for tokens in commands:
      self.assertEqual(tokens[:3], ["tfp-vqvae-client", "--server", "localhost:8500"])
      outputs.append(_run_console_script([tokens[0], "--server", address, *tokens[3:]],
                                         cwd))
    codes = np.load(os.path.join(cwd, "codes.npy"))
    self.assertEqual((codes.shape, codes.dtype), ((2, 7, 7), np.int32))
    self.assertLen(glob.glob(os.path.join(cwd, "decoded", "*.png")), 2)
    self.assertLen(glob.glob(os.path.join(cwd, "out", "*.png")), 2)
    self.assertTrue(os.path.exists(os.path.join(cwd, "out", "codes.npy")))
    self.assertLen(re.findall(r"\d+\.\d+", outputs[-1]), 3)


if __name__ == "__main__":
  tf.test.main()
