// What a failed delete means to the user, from the registry's answer.

import { LoginRequired, RegistryError } from "./client.js";

export function deleteMessage(error: unknown, what: string, repository: string): string {
  if (error instanceof LoginRequired) {
    return `You may not delete ${what}: log in as a user who may delete in ${repository}.`;
  }
  if (error instanceof RegistryError) {
    if (error.status === 405 || error.code === "UNSUPPORTED") {
      return `Deleting is disabled on this registry (storage.delete.enabled): ${what} was not deleted.`;
    }
    if (error.status === 403) return `You may not delete ${what} in ${repository}.`;
    if (error.status === 404) return `${what} is not there any more.`;
    return `Could not delete ${what}: ${error.message}`;
  }
  return `Could not delete ${what}: ${error instanceof Error ? error.message : String(error)}`;
}
