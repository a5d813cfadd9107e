using System.IO.Pipelines;
using System.Net.Sockets;

namespace SecureChannels.Relay.Peering;

/// <summary>A connected socket as an <see cref="IDuplexPipe"/>, for links this relay dials itself.</summary>
internal sealed class SocketPipe : IDuplexPipe, IAsyncDisposable
{
    private readonly NetworkStream _stream;

    public SocketPipe(Socket socket)
    {
        _stream = new NetworkStream(socket, ownsSocket: true);
        Input = PipeReader.Create(_stream);
        Output = PipeWriter.Create(_stream);
    }

    public PipeReader Input { get; }

    public PipeWriter Output { get; }

    public async ValueTask DisposeAsync()
    {
        await Input.CompleteAsync().ConfigureAwait(false);
        await Output.CompleteAsync().ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false);
    }
}
