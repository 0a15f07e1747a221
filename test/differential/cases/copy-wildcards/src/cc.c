cc
