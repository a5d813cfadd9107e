using System.IO.Pipelines;

namespace SecureChannels.Benchmarks;

/// <summary>
/// A connection in memory: two <see cref="Pipe"/>s crossed, so what one end writes the other reads. The
/// same pipes serve both the secure channel (as <see cref="IDuplexPipe"/>) and TLS (as a <see cref="Stream"/>),
/// so both pay for the same in-memory transport. Default <see cref="PipeOptions"/>: 64 KiB pause threshold,
/// continuations on the thread pool, as the channel tests use.
/// </summary>
internal static class InMemoryConnection
{
    /// <summary>Two ends of a fresh connection as duplex pipes.</summary>
    public static (IDuplexPipe Initiator, IDuplexPipe Responder) CreatePipes()
    {
        var toResponder = new Pipe();
        var toInitiator = new Pipe();
        return (new DuplexPipe(toInitiator.Reader, toResponder.Writer), new DuplexPipe(toResponder.Reader, toInitiator.Writer));
    }

    /// <summary>Two ends of a fresh connection as streams (for <see cref="System.Net.Security.SslStream"/>).</summary>
    public static (Stream Client, Stream Server) CreateStreams()
    {
        var (client, server) = CreatePipes();
        return (new DuplexPipeStream(client), new DuplexPipeStream(server));
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input => input;

        public PipeWriter Output => output;
    }

    /// <summary>
    /// One end of the connection as a read-write stream: reads come from <see cref="PipeReader.AsStream"/>, writes
    /// (each one flushed, as <see cref="PipeWriter.AsStream"/> does) go to the other end.
    /// </summary>
    private sealed class DuplexPipeStream(IDuplexPipe pipe) : Stream
    {
        private readonly Stream _input = pipe.Input.AsStream();
        private readonly Stream _output = pipe.Output.AsStream();

        public override bool CanRead => true;

        public override bool CanWrite => true;

        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => _input.Read(buffer, offset, count);

        public override int Read(Span<byte> buffer) => _input.Read(buffer);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            _input.ReadAsync(buffer, offset, count, cancellationToken);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            _input.ReadAsync(buffer, cancellationToken);

        public override void Write(byte[] buffer, int offset, int count) => _output.Write(buffer, offset, count);

        public override void Write(ReadOnlySpan<byte> buffer) => _output.Write(buffer);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            _output.WriteAsync(buffer, offset, count, cancellationToken);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            _output.WriteAsync(buffer, cancellationToken);

        public override void Flush() => _output.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => _output.FlushAsync(cancellationToken);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                // Completes both pipe ends: the peer's reads see the end of the stream.
                _input.Dispose();
                _output.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
