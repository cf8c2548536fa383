// Counting the azure driver's requests to the Blob service (StorageDriver.onBackendRequest): a
// policy in the SDK's request pipeline, and the service's name of the operation each request is.

import type { RequestPolicy, RequestPolicyOptions, WebResource } from "@azure/storage-blob";

/**
 * Counts each request the SDK sends. The storage SDK runs pipeline factories of this class name
 * after its retry policy (it is how its fault injection works), so every attempt is counted; a
 * factory of another name would run once per operation, before the retries.
 */
class InjectorPolicyFactory {
  constructor(private readonly count: (request: WebResource) => void) {}

  create(next: RequestPolicy, _options: RequestPolicyOptions): RequestPolicy {
    return {
      sendRequest: (request) => {
        this.count(request);
        return next.sendRequest(request);
      },
    };
  }
}

/** The Blob service's name of the operation a request is (Put Block, List Blobs...). */
export function azureOperation(method: string, url: string, copySource: boolean): string {
  const query = new URL(url).searchParams;
  const comp = query.get("comp");
  const container = query.get("restype") === "container";
  switch (comp) {
    case null:
      if (container)
        return `${method === "PUT" ? "Create" : method === "DELETE" ? "Delete" : "Get"}Container`;
      if (method === "PUT") return copySource ? "CopyBlob" : "PutBlob";
      if (method === "HEAD") return "GetBlobProperties";
      return method === "DELETE" ? "DeleteBlob" : "GetBlob";
    case "block":
      return copySource ? "PutBlockFromURL" : "PutBlock";
    case "blocklist":
      return method === "PUT" ? "PutBlockList" : "GetBlockList";
    case "list":
      return container ? "ListBlobs" : "ListContainers";
    case "userdelegationkey":
      return "GetUserDelegationKey";
    default:
      return `${method} ${comp}`;
  }
}

/** A pipeline factory telling `count` the operation of each request sent, retries included. */
export function countingPolicy(count: (operation: string) => void): InjectorPolicyFactory {
  return new InjectorPolicyFactory((request) =>
    count(
      azureOperation(
        request.method,
        request.url,
        request.headers.get("x-ms-copy-source") !== undefined,
      ),
    ),
  );
}
