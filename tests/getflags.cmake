# getflags tests are registered here.
