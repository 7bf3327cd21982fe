// base/version: the release, as `temper --version` prints it and as output directories record it.
#pragma once
#define TEMPER_VERSION "0.1.0"
