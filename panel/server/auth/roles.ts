import { USER_ROLES } from "@ha/db";
export type UserRole = (typeof USER_ROLES)[number];
