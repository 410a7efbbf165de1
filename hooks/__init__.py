"""The template's hooks, as a package so that the tests and benchmarks import them:
`from hooks import pre_gen_project`. Unrendered, each file is plain Python whose `main()`
holds the only Jinja (the answers, as a JSON string); cookiecutter runs only
pre_gen_project.py and post_gen_project.py, rendered, from temporary copies."""
