using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;
using SecureChannels.Protocol.Identity;
using SecureChannels.Relay.Routing;

namespace SecureChannels.Relay.Hops;

/// <summary>
/// One hop after HELLO: a read loop that dispatches frames to circuits, a queue of frames toward the hop with
/// one writer, and the circuits whose ends are on this hop. The queue is bounded by the circuits' credit and by
/// <see cref="RelayOptions.MaxQueuedBytesPerConnection"/>; a hop that stops draining it is cut, never buffered.
/// </summary>
internal sealed partial class HopSession : IDisposable
{
    private readonly SecureChannel _hop;
    private readonly CircuitSwitch _switch;
    private readonly RelayOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Dictionary<uint, (RelayCircuit Circuit, bool IsA)> _circuits = [];
    private readonly Channel<OutboundFrame> _outbound = Channel.CreateUnbounded<OutboundFrame>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stopReading = new();
    private readonly CancellationTokenSource _abandonWrites = new();
    private readonly TaskCompletionSource<ReasonFrame> _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly bool _weDialed;
    // Each queued frame also costs its queue slot and object: counted so a flood of tiny frames (PINGs) is bounded too.
    private const int FrameOverhead = 64;

    private long _queuedBytes;
    private long _reservedWindow;
    private long _lastProgress;
    private int _pendingOpens;
    private uint _nextId;
    private int _terminated;
    private double _tokens;
    private long _tokensAt;

    public HopSession(SecureChannel hop, string? peerRelay, bool weDialed, IReadOnlyList<string> addresses, CircuitSwitch circuitSwitch, RelayOptions options, TimeProvider time, ILogger logger)
    {
        _hop = hop;
        PeerRelay = peerRelay;
        _weDialed = weDialed;
        Addresses = addresses;
        _switch = circuitSwitch;
        _options = options;
        _time = time;
        _logger = logger;

        // Whoever dialed the hop allocates odd circuit ids, the other side even ones (§9.4).
        _nextId = weDialed ? 1u : 2u;
        _tokens = options.BytesPerSecondPerConnection;
        _tokensAt = time.GetTimestamp();
        _lastProgress = time.GetTimestamp();
    }

    public VerifiedPeer Peer => _hop.Peer;

    public Identifier Identifier => _hop.Peer.Identifier;

    /// <summary>The peer relay's name when this hop is a relay-to-relay link; null for agents.</summary>
    public string? PeerRelay { get; }

    /// <summary>True when this relay dialed the hop (a link to a peer relay); the hop's circuit ids are then odd on our side.</summary>
    public bool IsDialedByUs => _weDialed;

    /// <summary>The addresses registered for this hop (empty when not listening).</summary>
    public IReadOnlyList<string> Addresses { get; }

    /// <summary>How the hop ended.</summary>
    public Task<ReasonFrame> Ended => _ended.Task;

    public int CircuitCount
    {
        get
        {
            lock (_circuits)
            {
                return _circuits.Count;
            }
        }
    }

    public bool IsTerminated => Volatile.Read(ref _terminated) != 0;

    public long QueuedBytes => Interlocked.Read(ref _queuedBytes);

    /// <summary>Runs the hop until it ends; then every circuit on it has been ended toward its other end.</summary>
    public async Task RunAsync()
    {
        var writer = WriteLoopAsync();
        var stallCheck = TimeSpan.FromTicks(Math.Max(TimeSpan.FromMilliseconds(250).Ticks, _options.SendStallTimeout.Ticks / 4));
        await using (_time.CreateTimer(static state => ((HopSession)state!).CheckStall(), this, stallCheck, stallCheck).ConfigureAwait(false))
        {
            try
            {
                await ReadLoopAsync().ConfigureAwait(false);
            }
            catch (RelayException e)
            {
                Terminate(e.Code, e.Message, sendGoAway: true);
            }
            catch (SecureChannelException e)
            {
                Terminate(RelayErrorCode.PeerGone, $"The hop ended: {e.Code}.", sendGoAway: false);
            }
            catch (OperationCanceledException) when (_stopReading.IsCancellationRequested)
            {
                // Terminated from elsewhere (superseded, slow reader, shutdown).
            }

            // Give queued frames (a GOAWAY above all) a bounded chance to leave, then drop the hop.
            using (var drain = new CancellationTokenSource(_options.ShutdownTimeout, _time))
            {
                await writer.WaitAsync(drain.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            await _abandonWrites.CancelAsync().ConfigureAwait(false);
            await writer.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        await _hop.DisposeAsync().ConfigureAwait(false);
        Dispose();
    }

    /// <summary>Frees the cancellation sources; only after <see cref="RunAsync"/> ended, when nothing can cancel them any more.</summary>
    public void Dispose()
    {
        _stopReading.Dispose();
        _abandonWrites.Dispose();
    }

    /// <summary>Ends the hop once: tells the peer (if asked), and ends every circuit on it toward its other end.</summary>
    public void Terminate(RelayErrorCode code, string reason, bool sendGoAway)
    {
        if (Interlocked.Exchange(ref _terminated, 1) != 0)
        {
            return;
        }

        LogEnded(_logger, Identifier, code, reason);
        if (sendGoAway)
        {
            _outbound.Writer.TryWrite(OutboundFrame.Built(RelayFrames.GoAway(code, reason)));
        }

        _outbound.Writer.TryComplete();
        if (code == RelayErrorCode.SlowReader)
        {
            _abandonWrites.Cancel();
        }

        _stopReading.Cancel();
        _switch.OnHopEnded(this, code);
        _ended.TrySetResult(new ReasonFrame(code, reason));
    }

    /// <summary>Queues a frame the relay built.</summary>
    public void Enqueue(byte[] frame) => Queue(OutboundFrame.Built(frame));

    /// <summary>Queues a received message toward this hop; the hop now owns it.</summary>
    public void Forward(ChannelMessage message) => Queue(OutboundFrame.Forward(message));

    /// <summary>
    /// Reserves a circuit window toward this hop: the bytes that circuit may have in flight toward it. The sum stays
    /// within three quarters of <see cref="RelayOptions.MaxQueuedBytesPerConnection"/>, so a hop that reads slowly is never cut for
    /// bytes it granted itself: what it can be sent is bounded when circuits open, not after the fact.
    /// </summary>
    public bool TryReserveWindow(uint window)
    {
        lock (_circuits)
        {
            // Three quarters: the rest is for per-frame overhead and control frames.
            if (_reservedWindow + window > _options.MaxQueuedBytesPerConnection / 4 * 3)
            {
                return false;
            }

            _reservedWindow += window;
            return true;
        }
    }

    public void ReleaseWindow(uint window)
    {
        lock (_circuits)
        {
            _reservedWindow -= window;
        }
    }

    public bool TryAddCircuit(uint id, RelayCircuit circuit, bool isA, bool countsAsPendingOpen)
    {
        lock (_circuits)
        {
            if (Volatile.Read(ref _terminated) != 0 || _circuits.Count >= _options.MaxCircuitsPerConnection)
            {
                return false;
            }

            if (countsAsPendingOpen && _pendingOpens >= _options.MaxPendingOpensPerConnection)
            {
                return false;
            }

            if (!_circuits.TryAdd(id, (circuit, isA)))
            {
                return false;
            }

            if (countsAsPendingOpen)
            {
                _pendingOpens++;
            }

            return true;
        }
    }

    public bool IsCircuitInUse(uint id)
    {
        lock (_circuits)
        {
            return _circuits.ContainsKey(id);
        }
    }

    /// <summary>Picks a free id of this relay's parity on this hop.</summary>
    public uint AllocateId()
    {
        lock (_circuits)
        {
            while (true)
            {
                var id = _nextId;
                _nextId = _nextId >= uint.MaxValue - 1 ? (_weDialed ? 1u : 2u) : _nextId + 2;
                if (!_circuits.ContainsKey(id))
                {
                    return id;
                }
            }
        }
    }

    public void RemoveCircuit(uint id)
    {
        lock (_circuits)
        {
            _circuits.Remove(id);
        }
    }

    public void OpenAnswered()
    {
        lock (_circuits)
        {
            _pendingOpens--;
        }
    }

    public IReadOnlyList<RelayCircuit> SnapshotCircuits()
    {
        lock (_circuits)
        {
            return [.. _circuits.Values.Select(static c => c.Circuit).Distinct()];
        }
    }

    private void Queue(OutboundFrame frame)
    {
        var cost = frame.Length + FrameOverhead;
        var queued = Interlocked.Add(ref _queuedBytes, cost);
        if (queued == cost)
        {
            // The queue was empty: the stall clock starts now, not at the last send long ago.
            Interlocked.Exchange(ref _lastProgress, _time.GetTimestamp());
        }

        if (!_outbound.Writer.TryWrite(frame))
        {
            Interlocked.Add(ref _queuedBytes, -cost);
            frame.Release();
            return;
        }

        if (queued > _options.MaxQueuedBytesPerConnection && Volatile.Read(ref _terminated) == 0)
        {
            // Queue is called under a circuit's lock; ending the hop takes other circuits' locks, so it runs apart.
            _switch.Metrics.Refused("slow_reader");
            ThreadPool.UnsafeQueueUserWorkItem(
                static session => session.Terminate(RelayErrorCode.SlowReader, $"More than {session._options.MaxQueuedBytesPerConnection} bytes were queued toward this hop.", sendGoAway: false),
                this,
                preferLocal: false);
        }
    }

    private void CheckStall()
    {
        if (Volatile.Read(ref _terminated) == 0 && QueuedBytes > 0 && _time.GetElapsedTime(Interlocked.Read(ref _lastProgress)) > _options.SendStallTimeout)
        {
            _switch.Metrics.Refused("slow_reader");
            Terminate(RelayErrorCode.SlowReader, $"Queued frames made no progress for {_options.SendStallTimeout}.", sendGoAway: false);
        }
    }

    private async Task WriteLoopAsync()
    {
        var reader = _outbound.Reader;
        try
        {
            while (await reader.WaitToReadAsync(_abandonWrites.Token).ConfigureAwait(false))
            {
                while (reader.TryRead(out var frame))
                {
                    try
                    {
                        _switch.FrameObserver?.Invoke(frame.Bytes);
                        await _hop.SendAsync(frame.Bytes, _abandonWrites.Token).ConfigureAwait(false);
                    }
                    finally
                    {
                        Interlocked.Add(ref _queuedBytes, -(frame.Length + FrameOverhead));
                        Interlocked.Exchange(ref _lastProgress, _time.GetTimestamp());
                        frame.Release();
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Abandoned: the hop is being dropped.
        }
        catch (SecureChannelException e)
        {
            Terminate(RelayErrorCode.PeerGone, $"The hop ended: {e.Code}.", sendGoAway: false);
        }
        finally
        {
            while (reader.TryRead(out var left))
            {
                Interlocked.Add(ref _queuedBytes, -(left.Length + FrameOverhead));
                left.Release();
            }
        }
    }

    private async Task ReadLoopAsync()
    {
        var token = _stopReading.Token;
        while (true)
        {
            var message = await _hop.ReceiveAsync(token).ConfigureAwait(false);
            if (message is null)
            {
                Terminate(RelayErrorCode.Normal, "The hop closed.", sendGoAway: false);
                return;
            }

            var length = message.Payload.Length;
            bool handedOver;
            try
            {
                handedOver = Dispatch(message);
            }
            catch
            {
                message.Dispose();
                throw;
            }

            if (!handedOver)
            {
                message.Dispose();
            }

            if (Volatile.Read(ref _terminated) != 0)
            {
                return;
            }

            await ThrottleAsync(length, token).ConfigureAwait(false);
        }
    }

    // Returns true when the message changed hands (forwarded as is).
    private bool Dispatch(ChannelMessage message)
    {
        var frame = message.Payload;
        _switch.FrameObserver?.Invoke(frame);
        var type = RelayFrames.ReadType(frame.Span);
        switch (type)
        {
            case RelayFrameType.Ping:
                RelayFrames.DecodePing(frame.Span);
                var pong = frame.ToArray();
                pong[0] = (byte)RelayFrameType.Pong;
                Enqueue(pong);
                return false;
            case RelayFrameType.Pong:
                RelayFrames.DecodePing(frame.Span);
                return false;
            case RelayFrameType.GoAway:
                var goAway = RelayFrames.DecodeGoAway(frame);
                Terminate(goAway.Code == RelayErrorCode.Normal ? RelayErrorCode.Normal : RelayErrorCode.PeerGone, $"The hop said goodbye: {goAway.Code}.", sendGoAway: false);
                return false;
            case RelayFrameType.Hello:
            case RelayFrameType.Welcome:
                throw new RelayException(RelayErrorCode.ProtocolViolation, $"Protocol violation: a {type} frame after the hop was set up.");
            case RelayFrameType.Open:
                _switch.Open(this, RelayFrames.ReadCircuit(frame.Span), RelayFrames.DecodeOpen(frame));
                return false;
            default:
                return DispatchCircuitFrame(type, message);
        }
    }

    private bool DispatchCircuitFrame(RelayFrameType type, ChannelMessage message)
    {
        var frame = message.Payload;
        var id = RelayFrames.ReadCircuit(frame.Span);
        (RelayCircuit Circuit, bool IsA) entry;
        lock (_circuits)
        {
            if (!_circuits.TryGetValue(id, out entry))
            {
                // A frame that crossed the circuit's end (our RESET or REFUSE) on the wire: dropped.
                ValidateShape(type, frame);
                return false;
            }
        }

        var (circuit, isA) = entry;
        switch (type)
        {
            case RelayFrameType.Data:
                return circuit.ForwardData(isA, message, _options.MaxDataLength);
            case RelayFrameType.Credit:
                return circuit.OnCredit(isA, RelayFrames.DecodeWindow(frame.Span), message);
            case RelayFrameType.Close:
                RelayFrames.CheckClose(frame.Span);
                return circuit.OnClose(isA, message);
            case RelayFrameType.Reset:
                return circuit.OnReset(isA, RelayFrames.DecodeCircuitReason(frame, RelayFrameType.Reset), message);
            case RelayFrameType.Accept:
                circuit.OnAccept(isA, RelayFrames.DecodeWindow(frame.Span), (uint)_options.MaxCircuitWindow);
                return false;
            case RelayFrameType.Refuse:
                circuit.OnRefuse(isA, RelayFrames.DecodeCircuitReason(frame, RelayFrameType.Refuse));
                return false;
            default:
                throw new RelayException(RelayErrorCode.ProtocolViolation, $"Protocol violation: unexpected {type} frame.");
        }
    }

    // A frame for a finished circuit is dropped, but a malformed one still ends the hop.
    private static void ValidateShape(RelayFrameType type, ReadOnlyMemory<byte> frame)
    {
        switch (type)
        {
            case RelayFrameType.Accept or RelayFrameType.Credit:
                RelayFrames.DecodeWindow(frame.Span);
                break;
            case RelayFrameType.Refuse or RelayFrameType.Reset:
                RelayFrames.DecodeCircuitReason(frame, type);
                break;
            case RelayFrameType.Close:
                RelayFrames.CheckClose(frame.Span);
                break;
        }
    }

    private async ValueTask ThrottleAsync(int bytes, CancellationToken cancellationToken)
    {
        var rate = _options.BytesPerSecondPerConnection;
        if (rate <= 0)
        {
            return;
        }

        var now = _time.GetTimestamp();
        _tokens = Math.Min(rate, _tokens + (_time.GetElapsedTime(_tokensAt, now).TotalSeconds * rate)) - bytes;
        _tokensAt = now;
        if (_tokens < 0)
        {
            // Reading more slowly is the back-pressure: the sender's TCP window closes, nothing is buffered here.
            await Task.Delay(TimeSpan.FromSeconds(-_tokens / rate), _time, cancellationToken).ConfigureAwait(false);
        }
    }

    [LoggerMessage(EventId = 20, Level = LogLevel.Information, Message = "Hop of {Identifier} ended: {Code} ({Reason})")]
    private static partial void LogEnded(ILogger logger, Identifier identifier, RelayErrorCode code, string reason);
}
