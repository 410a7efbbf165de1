"""The fleet: for every combination of tests/answers.py, a project made at the previous release,
worked on by its team for a week (tests/releases.py, teams_week), takes the newest release with
`make update`: no conflict, the release's change in every file of the template's, and, for the
combination that changes every answer, the project's own test suite green after. (The release is
the one tests/releases.py makes, which changes every file the template owns and what the platform
package does; the project's suite runs in the default project's virtualenv; `make check`'s
linters are test_quality_gates.py's.)"""

import pytest
from answers import COMBINATIONS, NON_DEFAULT
from releases import (
    MARK,
    RELEASE,
    assert_the_projects_suite_passes,
    committed_project,
    git,
    make,
    make_template_repo,
    release_touching_every_template_file,
    teams_week,
)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """(template, the generated paths the newest release changed): RELEASE, then the next minor one."""
    template = make_template_repo(tmp_path_factory.mktemp("fleet") / "template")
    return template, release_touching_every_template_file(template)


@pytest.mark.parametrize("answers", COMBINATIONS, ids=[str(index) for index in range(len(COMBINATIONS))])
def test_a_project_of_the_fleet_takes_the_newest_release_without_conflict(released, answers, tmp_path, project_venv):
    template, marked = released
    project = committed_project(template, tmp_path, "--checkout", f"v{RELEASE}", **answers)
    production = [name.strip() for name in answers.get("hostspaces", "dev, stage, prod").split(",")][-1]
    teams_week(project, production=production)

    updated = make(project, "update")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "conflict" not in (updated.stdout + updated.stderr).lower()
    assert git(project, "ls-files", "--others", "--", "*.rej") == ""
    missed = [path for path in marked if (project / path).exists() and MARK not in (project / path).read_text()]
    assert missed == []
    assert make(project, "outdated").returncode == 0
    # The service's code renders the same for every combination but the one that changes its
    # answers (test_releases.py serves the default one after such a release).
    if answers == NON_DEFAULT:
        assert_the_projects_suite_passes(project, project_venv)
