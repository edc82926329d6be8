# Tests of the semaphore, the engine, the saver and whole runs are registered here.
