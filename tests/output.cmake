# What getflags tells its user (lost reports, escaping, the progress bar on
# a dumb terminal) and the images it refuses to save.
gf_integration_test(getflags_output getflags_output.py)
