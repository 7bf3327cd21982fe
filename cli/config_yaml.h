// cli/config_yaml: reads a YAML config file (TRL's `--config run.yaml`) as JSON text.
#pragma once
#include "base/error.h"
#include "base/json.h"

// Appends the YAML file's one document to out as JSON. Returns 0, or -1 with
// "path:line: YAML: reason" in err.
int config_yaml_to_json(const char *path, sbuf *out, tm_error *err);
