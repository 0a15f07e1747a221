// many-files app (version 0)
