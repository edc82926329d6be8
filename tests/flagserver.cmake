# flagserver tests are registered here.
