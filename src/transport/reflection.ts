import { create, toBinary, type DescFile, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

type Request = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;

/**
 * gRPC server reflection (v1 and v1alpha) over the generated descriptors, so
 * grpcurl and `buf curl` work against a server without proto files.
 */
export class Reflection {
  private readonly filesByName = new Map<string, DescFile>();
  private readonly filesBySymbol = new Map<string, DescFile>();
  private readonly serviceNames: string[];

  constructor(services: readonly DescService[]) {
    this.serviceNames = services.map((s) => s.typeName);
    for (const service of services) this.index(service.file);
  }

  /** Indexes a file, its symbols (services, methods, messages, enums) and its imports. */
  private index(file: DescFile): void {
    if (this.filesByName.has(file.name)) return;
    this.filesByName.set(file.name, file);
    const addMessage = (message: DescMessage) => {
      this.filesBySymbol.set(message.typeName, file);
      message.nestedMessages.forEach(addMessage);
      message.nestedEnums.forEach((e) => this.filesBySymbol.set(e.typeName, file));
    };
    file.messages.forEach(addMessage);
    file.enums.forEach((e) => this.filesBySymbol.set(e.typeName, file));
    for (const service of file.services) {
      this.filesBySymbol.set(service.typeName, file);
      service.methods.forEach((m) => this.filesBySymbol.set(`${service.typeName}.${m.name}`, file));
    }
    file.dependencies.forEach((d) => this.index(d));
  }

  v1(): ServiceImpl<typeof v1.ServerReflection> {
    return { serverReflectionInfo: (requests) => this.answer(requests) };
  }

  v1alpha(): ServiceImpl<typeof v1alpha.ServerReflection> {
    // The two versions are the same messages under two package names.
    return { serverReflectionInfo: (requests) => this.answer(requests) as AsyncIterable<any> };
  }

  private async *answer(requests: AsyncIterable<Request>) {
    for await (const request of requests) {
      yield { validHost: request.host, originalRequest: request, messageResponse: this.respond(request) } as any;
    }
  }

  private respond(request: Request) {
    const r = request.messageRequest;
    switch (r.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: this.serviceNames.map((name) => ({ name })) } } as const;
      case "fileByFilename":
        return this.files(this.filesByName.get(r.value), `file ${r.value} not found`);
      case "fileContainingSymbol":
        return this.files(this.filesBySymbol.get(r.value), `symbol ${r.value} not found`);
      case "fileContainingExtension":
      case "allExtensionNumbersOfType":
        return { case: "errorResponse", value: { errorCode: 12, errorMessage: "extensions are not supported" } } as const;
      default:
        return { case: "errorResponse", value: { errorCode: 3, errorMessage: "empty request" } } as const;
    }
  }

  /** The file and everything it imports, as serialized FileDescriptorProtos. */
  private files(file: DescFile | undefined, notFound: string) {
    if (file === undefined) return { case: "errorResponse", value: { errorCode: 5, errorMessage: notFound } } as const;
    const all = new Map<string, DescFile>();
    const visit = (f: DescFile) => {
      if (all.has(f.name)) return;
      all.set(f.name, f);
      f.dependencies.forEach(visit);
    };
    visit(file);
    const fileDescriptorProto = [...all.values()].map((f) =>
      toBinary(FileDescriptorProtoSchema, create(FileDescriptorProtoSchema, f.proto)),
    );
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto } } as const;
  }
}
