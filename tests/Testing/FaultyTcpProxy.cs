using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;

namespace SecureChannels.Testing;

/// <summary>
/// A loopback TCP proxy (port 0) in front of <c>upstream</c>: every connection it accepts goes on to upstream
/// through a <see cref="FaultyLink"/>, with the plans the test chooses for that connection (by its number, from 0).
/// For a hop a test does not open itself, such as the link one relay dials to another.
/// </summary>
public sealed class FaultyTcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly IPEndPoint _upstream;
    private readonly Func<int, (FaultPlan? ToUpstream, FaultPlan? FromUpstream)> _plans;
    private readonly List<FaultyLink> _links = [];
    private readonly List<TcpClient> _clients = [];
    private readonly Task _accepting;
    private TaskCompletionSource _linked = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public FaultyTcpProxy(IPEndPoint upstream, Func<int, (FaultPlan? ToUpstream, FaultPlan? FromUpstream)> plans)
    {
        _upstream = upstream;
        _plans = plans;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _accepting = AcceptLoopAsync();
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndpoint;

    /// <summary>The links of the connections accepted so far, in order.</summary>
    public IReadOnlyList<FaultyLink> Links
    {
        get
        {
            lock (_links)
            {
                return [.. _links];
            }
        }
    }

    /// <summary>Completes once <paramref name="count"/> connections have been accepted and linked upstream.</summary>
    public async Task WaitForLinksAsync(int count)
    {
        while (true)
        {
            Task signal;
            lock (_links)
            {
                if (_links.Count >= count)
                {
                    return;
                }

                signal = _linked.Task;
            }

            await signal.WaitAsync(FrameRelay.Guard).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        try
        {
            await _accepting.ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Stopped.
        }

        foreach (var link in Links)
        {
            link.Cut();
            await link.Completion.WaitAsync(FrameRelay.Guard).ConfigureAwait(false);
        }

        lock (_links)
        {
            foreach (var client in _clients)
            {
                client.Dispose();
            }
        }
    }

    private static FaultyLink.DuplexPipe Pipe(TcpClient client)
    {
        var stream = client.GetStream();
        return new FaultyLink.DuplexPipe(PipeReader.Create(stream), PipeWriter.Create(stream));
    }

    private async Task AcceptLoopAsync()
    {
        while (true)
        {
            TcpClient accepted;
            try
            {
                accepted = await _listener.AcceptTcpClientAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            var upstream = new TcpClient(AddressFamily.InterNetwork) { NoDelay = true };
            accepted.NoDelay = true;
            try
            {
                await upstream.ConnectAsync(_upstream).ConfigureAwait(false);
            }
            catch (SocketException)
            {
                accepted.Dispose();
                upstream.Dispose();
                continue;
            }

            lock (_links)
            {
                var (toUpstream, fromUpstream) = _plans(_links.Count);
                _clients.Add(accepted);
                _clients.Add(upstream);
                _links.Add(new FaultyLink(Pipe(accepted), Pipe(upstream), toUpstream, fromUpstream));
                _linked.TrySetResult();
                _linked = new(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
    }
}
