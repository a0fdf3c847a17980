// Catch2's main(), compiled once into an object every unit test links against.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
