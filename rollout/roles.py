"""The roles people hold, as Django groups. Created by migration 0002; see docs/roles.md."""

VIEWER = "viewer"
RELEASE_MANAGER = "release manager"
TECH_LEAD = "tech lead"
DEVOPS = "devops"
ADMIN = "admin"

ALL = (VIEWER, RELEASE_MANAGER, TECH_LEAD, DEVOPS, ADMIN)
