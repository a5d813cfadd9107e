using System.Runtime.InteropServices;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;
using SecureChannels.Relay.Hops;

namespace SecureChannels.Relay.Routing;

/// <summary>
/// One circuit through this relay: the opener's end (A) and the target's end (B), each a hop and a circuit id
/// on that hop, and the credit of each direction (docs/protocol.md §9.4). The relay enforces the credit, so it
/// never holds more than one window per direction whatever either reader does.
/// </summary>
internal sealed class RelayCircuit
{
    private readonly CircuitSwitch _switch;
    private ITimer? _openTimer;
    private long _creditA;
    private long _creditB;
    private uint _windowB;
    private bool _closedA;
    private bool _closedB;
    private bool _reservedB;

    public RelayCircuit(CircuitSwitch circuitSwitch, HopSession a, uint idA, uint windowA, HopSession b, uint idB)
    {
        _switch = circuitSwitch;
        A = a;
        IdA = idA;
        WindowA = windowA;
        B = b;
        IdB = idB;
    }

    public HopSession A { get; }

    public uint IdA { get; }

    /// <summary>The opener's receive window (from OPEN): B may have this many bytes in flight toward A.</summary>
    public uint WindowA { get; }

    public HopSession B { get; }

    public uint IdB { get; }

    public bool Accepted { get; private set; }

    public bool Ended { get; private set; }

    /// <summary>
    /// Registers the circuit on both hops and sends OPEN to the target, all under the circuit's lock: a hop that ends
    /// meanwhile finds the circuit whole (and its RESET follows the OPEN), never half-registered.
    /// The opener's window was reserved on A by the caller; it is released here on failure.
    /// </summary>
    public RelayErrorCode Begin(OpenFrame forwarded, TimeProvider time, TimeSpan timeout)
    {
        lock (this)
        {
            if (!A.TryAddCircuit(IdA, this, isA: true, countsAsPendingOpen: true))
            {
                A.ReleaseWindow(WindowA);
                return RelayErrorCode.LimitExceeded;
            }

            if (!B.TryAddCircuit(IdB, this, isA: false, countsAsPendingOpen: false))
            {
                A.RemoveCircuit(IdA);
                A.OpenAnswered();
                A.ReleaseWindow(WindowA);
                return B.IsTerminated ? RelayErrorCode.Unreachable : RelayErrorCode.LimitExceeded;
            }

            _openTimer = time.CreateTimer(static state => ((RelayCircuit)state!).OnOpenTimeout(), this, timeout, Timeout.InfiniteTimeSpan);
            B.Enqueue(RelayFrames.Open(IdB, forwarded));
            return RelayErrorCode.Normal;
        }
    }

    /// <summary>Forwards a DATA frame from one end to the other; returns true when the message changed hands.</summary>
    public bool ForwardData(bool fromA, ChannelMessage message, int maxData)
    {
        var length = message.Payload.Length - RelayLimits.CircuitHeaderLength;
        lock (this)
        {
            if (Ended)
            {
                return false; // A frame that crossed our RESET: dropped, as the RESET told the sender.
            }

            if (length <= 0 || length > maxData)
            {
                return Violation(RelayErrorCode.ProtocolViolation, $"a DATA frame of {length} bytes (1 to {maxData} allowed)");
            }

            if (!Accepted || (fromA ? _closedA : _closedB))
            {
                return Violation(RelayErrorCode.ProtocolViolation, "DATA before ACCEPT or after CLOSE");
            }

            ref var credit = ref fromA ? ref _creditA : ref _creditB;
            if (length > credit)
            {
                return Violation(RelayErrorCode.FlowControlViolation, $"DATA of {length} bytes with {credit} bytes of credit");
            }

            credit -= length;
        }

        ForwardAsIs(fromA, message);
        _switch.Metrics.Forwarded(length);
        return true;
    }

    /// <summary>ACCEPT from the target: the circuit opens with the target's window as the opener's credit.</summary>
    public void OnAccept(bool fromA, uint window, uint maxWindow)
    {
        lock (this)
        {
            if (Ended)
            {
                return;
            }

            if (fromA || Accepted)
            {
                Violation(RelayErrorCode.ProtocolViolation, "an ACCEPT from the opener, or a second ACCEPT");
                return;
            }

            if (window > maxWindow)
            {
                Violation(RelayErrorCode.ProtocolViolation, $"an ACCEPT window of {window} bytes above the relay's {maxWindow}");
                return;
            }

            if (!B.TryReserveWindow(window))
            {
                _switch.Metrics.Refused("limit_exceeded");
                End();
                A.Enqueue(RelayFrames.CircuitReason(RelayFrameType.Refuse, IdA, RelayErrorCode.LimitExceeded, "The target's connection has no window budget left."));
                B.Enqueue(RelayFrames.CircuitReason(RelayFrameType.Reset, IdB, RelayErrorCode.LimitExceeded, "This connection's circuit windows would exceed MaxQueuedBytesPerConnection."));
                return;
            }

            _reservedB = true;
            Accepted = true;
            _windowB = window;
            _creditA = window;
            _creditB = WindowA;
        }

        _openTimer?.Dispose();
        A.OpenAnswered();
        _switch.Metrics.CircuitOpened();
        A.Enqueue(RelayFrames.WindowFrame(RelayFrameType.Accept, IdA, window));
    }

    /// <summary>REFUSE from the target, passed to the opener.</summary>
    public void OnRefuse(bool fromA, ReasonFrame refusal)
    {
        lock (this)
        {
            if (Ended)
            {
                return;
            }

            if (fromA || Accepted)
            {
                Violation(RelayErrorCode.ProtocolViolation, "a REFUSE from the opener, or after ACCEPT");
                return;
            }

            End();
        }

        A.Enqueue(RelayFrames.CircuitReason(RelayFrameType.Refuse, IdA, refusal.Code, refusal.Reason));
    }

    /// <summary>CREDIT from one end adds to the other end's credit, never beyond the granting end's window.</summary>
    public bool OnCredit(bool fromA, uint increment, ChannelMessage message)
    {
        lock (this)
        {
            if (Ended)
            {
                return false;
            }

            if (!Accepted)
            {
                return Violation(RelayErrorCode.ProtocolViolation, "CREDIT before ACCEPT");
            }

            // CREDIT from A lets B send more toward A, bounded by A's window; and the other way round.
            ref var credit = ref fromA ? ref _creditB : ref _creditA;
            var window = fromA ? WindowA : _windowB;
            if (credit + increment > window)
            {
                return Violation(RelayErrorCode.FlowControlViolation, $"CREDIT beyond the {window}-byte window");
            }

            credit += increment;
        }

        ForwardAsIs(fromA, message);
        return true;
    }

    /// <summary>CLOSE from one end: passed on; the circuit ends when both ends have closed.</summary>
    public bool OnClose(bool fromA, ChannelMessage message)
    {
        lock (this)
        {
            if (Ended)
            {
                return false;
            }

            if (!Accepted || (fromA ? _closedA : _closedB))
            {
                return Violation(RelayErrorCode.ProtocolViolation, "CLOSE before ACCEPT, or a second CLOSE");
            }

            if (fromA)
            {
                _closedA = true;
            }
            else
            {
                _closedB = true;
            }

            if (_closedA && _closedB)
            {
                End();
            }
        }

        ForwardAsIs(fromA, message);
        return true;
    }

    /// <summary>RESET from one end: the circuit ends; the other end learns the code (as REFUSE if it was still opening).</summary>
    public bool OnReset(bool fromA, ReasonFrame reset, ChannelMessage message)
    {
        bool refuseOpener;
        lock (this)
        {
            if (Ended)
            {
                return false;
            }

            refuseOpener = !fromA && !Accepted;
            End();
        }

        if (refuseOpener)
        {
            A.Enqueue(RelayFrames.CircuitReason(RelayFrameType.Refuse, IdA, reset.Code, reset.Reason));
            return false;
        }

        ForwardAsIs(fromA, message);
        return true;
    }

    /// <summary>One end's hop ended: the other end learns it.</summary>
    public void OnHopEnded(HopSession ended, RelayErrorCode code)
    {
        bool opening;
        lock (this)
        {
            if (Ended)
            {
                return;
            }

            opening = !Accepted;
            End();
        }

        var reason = code == RelayErrorCode.ShuttingDown ? "The relay is shutting down." : "The other end's connection to the relay ended.";
        if (ended == A && ended != B)
        {
            B.Enqueue(RelayFrames.CircuitReason(RelayFrameType.Reset, IdB, code, reason));
        }
        else if (ended == B && ended != A)
        {
            A.Enqueue(RelayFrames.CircuitReason(opening ? RelayFrameType.Refuse : RelayFrameType.Reset, IdA, code, reason));
        }
    }

    private void OnOpenTimeout()
    {
        lock (this)
        {
            if (Ended || Accepted)
            {
                return;
            }

            End();
        }

        _switch.Metrics.Refused("open_timeout");
        A.Enqueue(RelayFrames.CircuitReason(RelayFrameType.Refuse, IdA, RelayErrorCode.OpenTimeout, "The target did not answer in time."));
        B.Enqueue(RelayFrames.CircuitReason(RelayFrameType.Reset, IdB, RelayErrorCode.OpenTimeout, "The opener's wait ran out."));
    }

    private void ForwardAsIs(bool fromA, ChannelMessage message)
    {
        var (to, id) = fromA ? (B, IdB) : (A, IdA);
        RelayFrames.RewriteCircuit(MemoryMarshal.AsMemory(message.Payload).Span, id);
        to.Forward(message);
    }

    // Called under the lock. Both ends learn the code; the circuit is gone. Returns false: the caller keeps the message.
    private bool Violation(RelayErrorCode code, string what)
    {
        End();
        _switch.Metrics.Refused(code == RelayErrorCode.FlowControlViolation ? "flow_control" : "protocol_violation");
        var reason = $"Circuit reset: {what}.";
        A.Enqueue(RelayFrames.CircuitReason(Accepted ? RelayFrameType.Reset : RelayFrameType.Refuse, IdA, code, reason));
        B.Enqueue(RelayFrames.CircuitReason(RelayFrameType.Reset, IdB, code, reason));
        return false;
    }

    // Called under the lock: the ids are freed on both hops at once, so no later frame can find the circuit.
    private void End()
    {
        Ended = true;
        A.ReleaseWindow(WindowA);
        if (_reservedB)
        {
            B.ReleaseWindow(_windowB);
        }

        _openTimer?.Dispose();
        if (!Accepted)
        {
            A.OpenAnswered();
        }
        else
        {
            _switch.Metrics.CircuitClosed();
        }

        A.RemoveCircuit(IdA);
        B.RemoveCircuit(IdB);
    }
}
