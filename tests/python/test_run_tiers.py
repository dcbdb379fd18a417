"""tests/python/run_tiers.py, the per-tier driver of `make test`: a tier the CPU runs must run
parity tests, not only the loader tests that also run when a tier is refused."""

import importlib.util
import pathlib

RUN_TIERS = pathlib.Path(__file__).with_name("run_tiers.py")
_spec = importlib.util.spec_from_file_location("run_tiers", RUN_TIERS)
run_tiers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_tiers)


def junit(tmp_path, cases):
    """A pytest JUnit report with ``cases`` = [(module, outcome)], outcome None for passed."""
    body = "".join('<testcase classname="%s" name="t%d">%s</testcase>' % (
        module, i, "" if outcome is None else "<%s/>" % outcome) for i, (module, outcome) in enumerate(cases))
    path = tmp_path / "report.xml"
    path.write_text('<testsuites><testsuite name="pytest">%s</testsuite></testsuites>' % body)
    return path


def test_counts_separate_parity_from_loader_tests(tmp_path):
    found = run_tiers.counts(junit(tmp_path, [("tests.python.test_functional", None),
                                              ("tests.python.test_bag_module.TestX", "skipped"),
                                              ("tests.python.test_loader", None), ("test_cpu", "failure")]))
    assert found["parity"] == {"passed": 1, "skipped": 1}
    assert found["loader"] == {"passed": 1, "failure": 1}


def test_a_tier_that_ran_only_loader_tests_fails(tmp_path):
    # What a refused tier looks like: conftest collects only the loader and CPU tests.
    found = run_tiers.counts(junit(tmp_path, [("test_loader", None), ("test_cpu", None)]))
    line, failure = run_tiers.verdict("x86-64-v4", 0, found)
    assert "parity tests none" in line and "no parity test ran" in failure


def test_a_tier_with_parity_tests_passes(tmp_path):
    found = run_tiers.counts(junit(tmp_path, [("test_functional", None), ("test_loader", None)]))
    line, failure = run_tiers.verdict("x86-64-v3", 0, found)
    assert failure is None and line == "native: python parity x86-64-v3: parity tests 1 passed; loader tests 1 passed"


def test_pytest_failures_and_missing_reports_fail(tmp_path):
    found = run_tiers.counts(junit(tmp_path, [("test_functional", "failure")]))
    assert run_tiers.verdict("x86-64-v2", 1, found)[1] == "x86-64-v2: pytest exited with 1"
    assert "wrote no report" in run_tiers.verdict("x86-64-v2", 4, None)[1]


def test_a_tier_the_cpu_cannot_run_is_skipped_with_the_reason(tmp_path):
    def no_pytest(*args, **kwargs):
        raise AssertionError("pytest must not run for a tier the CPU cannot run")
    line, failure = run_tiers.run_tier("x86-64-v4", "AVX512F, AVX512BW (CPUID)", tmp_path, run_pytest=no_pytest)
    assert failure is None
    assert line == "skipped: python parity x86-64-v4 (this CPU cannot run it: AVX512F, AVX512BW (CPUID))"


def test_a_tier_the_cpu_runs_is_run_and_judged(tmp_path):
    def fake_pytest(command, env, cwd):
        assert env["EMBEDDING_NATIVE_TIER"] == "x86-64-v3" and "EMBEDDING_NATIVE_LIBRARY" not in env
        report = pathlib.Path(command[command.index("--junitxml") + 1])
        report.write_text('<testsuites><testsuite><testcase classname="tests.python.test_loader" name="t"/>'
                          '</testsuite></testsuites>')
        return 0
    line, failure = run_tiers.run_tier("x86-64-v3", "", tmp_path, run_pytest=fake_pytest)
    assert "no parity test ran" in failure and "loader tests 1 passed" in line
    assert run_tiers.run_tier("x86-64-v9", None, tmp_path)[1] == "x86-64-v9: not an x86-64 tier"


def test_each_run_pins_torchs_kernel_set(tmp_path):
    seen = []

    def fake_pytest(command, env, cwd):
        seen.append((env.get("ATEN_CPU_CAPABILITY"), [c.rsplit("/", 1)[-1] for c in command if "tests" in c]))
        report = pathlib.Path(command[command.index("--junitxml") + 1])
        report.write_text('<testsuites><testsuite><testcase classname="tests.python.test_functional" name="t"/>'
                          '</testsuite></testsuites>')
        return 0
    line, failure = run_tiers.run_tier("x86-64-v2", "", tmp_path, run_pytest=fake_pytest)
    assert failure is None and line.startswith("native: python parity x86-64-v2 with torch's default kernels:")
    run_tiers.run_tier("x86-64-v3", "", tmp_path, run_pytest=fake_pytest)
    run_tiers.run_tier("x86-64-v4", "", tmp_path, run_pytest=fake_pytest, torch_kernels="avx512",
                       modules=("test_dtype_models.py",))
    assert seen == [("default", ["python"]), (None, ["python"]), ("avx512", ["test_dtype_models.py"])]
