// The whole public API of DevCycle in one include.
#pragma once

#include "devcycle/cache.h"
#include "devcycle/clock.h"
#include "devcycle/config.h"
#include "devcycle/database.h"
#include "devcycle/database_wrapper.h"
#include "devcycle/error.h"
#include "devcycle/json_schema.h"
#include "devcycle/logger.h"
#include "devcycle/metrics.h"
#include "devcycle/platform.h"
#include "devcycle/registry.h"
#include "devcycle/semver.h"
#include "devcycle/uuid.h"
#include "devcycle/value.h"
#include "devcycle/version.h"
