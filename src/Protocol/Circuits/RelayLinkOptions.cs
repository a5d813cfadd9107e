using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace SecureChannels.Protocol.Circuits;

/// <summary>
/// How an agent's <see cref="RelayLink"/> presents itself to the relay and the limits of its circuits
/// (docs/protocol.md §9). Every limit has one default and one line of why.
/// </summary>
public sealed class RelayLinkOptions
{
    private IReadOnlyList<string> _names = [];
    private int _circuitWindow = 256 * 1024;
    private int _maxPendingIncoming = 64;
    private TimeSpan _welcomeTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Whether the relay should make this hop reachable at this agent's identifier and <see cref="Names"/>; false for an outbound-only hop. Defaults to true.</summary>
    public bool Listen { get; init; } = true;

    /// <summary>Names to register besides the identifier (each granted by a credential the relay trusts); must be empty when not listening.</summary>
    /// <exception cref="ArgumentException">A name is not a valid relay name, or there are more than <see cref="RelayLimits.MaxNamesInHello"/>.</exception>
    public IReadOnlyList<string> Names
    {
        get => _names;
        init
        {
            ArgumentNullException.ThrowIfNull(value);
            if (value.Count > RelayLimits.MaxNamesInHello)
            {
                throw new ArgumentException($"At most {RelayLimits.MaxNamesInHello} names may be registered.", nameof(value));
            }

            foreach (var name in value)
            {
                if (!RelayAddress.IsValidName(name))
                {
                    throw new ArgumentException($"'{name}' is not a relay name: 1-63 of a-z 0-9 - . starting with a letter or digit.", nameof(value));
                }
            }

            _names = [.. value];
        }
    }

    /// <summary>
    /// Bytes the far end of each circuit may send before this side grants more: bounds what one circuit buffers here
    /// and what the relay holds for it. Clamped to the relay's <see cref="WelcomeFrame.MaxWindow"/>. A circuit that carries a
    /// <see cref="Channel.SecureChannel"/> needs at least one record (65,537 bytes), or its reader waits forever. Defaults to 256 KiB; 1 KiB to 16 MiB.
    /// </summary>
    public int CircuitWindow
    {
        get => _circuitWindow;
        init => _circuitWindow = InRange(value, 1024, 16 * 1024 * 1024);
    }

    /// <summary>Incoming circuits waiting for <see cref="RelayLink.AcceptCircuitAsync"/>; more are refused with <see cref="RelayErrorCode.LimitExceeded"/>, so a flood of OPENs holds bounded memory. Defaults to 64; 1 to 4096.</summary>
    public int MaxPendingIncoming
    {
        get => _maxPendingIncoming;
        init => _maxPendingIncoming = InRange(value, 1, 4096);
    }

    /// <summary>How long to wait for WELCOME after HELLO: a relay that never answers holds nothing longer. Defaults to 10 s; 1 s to 5 min.</summary>
    public TimeSpan WelcomeTimeout
    {
        get => _welcomeTimeout;
        init => _welcomeTimeout = InRange(value, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5));
    }

    /// <summary>The clock for the WELCOME timeout and PING round trips, replaceable in tests.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Where link events are logged (how the hop ended, protocol violations); never circuit contents.</summary>
    public ILogger Logger { get; init; } = NullLogger.Instance;

    private static T InRange<T>(T value, T min, T max)
        where T : IComparable<T>
    {
        if (value.CompareTo(min) < 0 || value.CompareTo(max) > 0)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, $"Must be between {min} and {max}.");
        }

        return value;
    }
}
