import CapturedResponses
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix

// As opencourse runs: NIO's event loops are Swift concurrency's global executor.
_ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()

/// Hummingbird 2 with one route per captured response and no middleware.
func response(_ captured: CapturedResponse) -> Response {
    var fields = HTTPFields()
    for header in captured.headers {
        if let name = HTTPField.Name(header.name) { fields.append(HTTPField(name: name, value: header.value)) }
    }
    return Response(status: .ok, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: captured.body)))
}

let responses = try CapturedResponse.load()
let health = response(responses.health), get = response(responses.get), list = response(responses.list)
let router = Router()
router.get("/health") { _, _ in health }
router.get("/api/v1/courses/:id") { _, _ in get }
router.get("/api/v1/courses") { _, _ in list }
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: CapturedResponse.port)))
try await app.runService()
