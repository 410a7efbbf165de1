# The team's own make targets and settings. flask-appstack's releases never change this file;
# the Makefile, which is the template's, reads it last. A target with a `## what it does`
# comment shows in `make help`. Settings of the Makefile can be set here for everyone, e.g.:
#
#   BUILD_OPTIONS = --network host
#
#   seed:  ## load the example data into the local database
#   	cd source && .venv/bin/python -m api.seed
