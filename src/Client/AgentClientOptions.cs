using System.Diagnostics.Metrics;
using System.Net;
using MessagePack;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Policy;

namespace SecureChannels.Client;

/// <summary>A relay an agent keeps a hop to: where it is and the identity it must prove.</summary>
/// <param name="EndPoint">Its hop endpoint.</param>
/// <param name="Identifier">The relay's identifier, pinned in the hop handshake.</param>
public sealed record RelayEndpoint(IPEndPoint EndPoint, Identifier Identifier);

/// <summary>Who an agent is, whom it trusts and accepts, and where it is reachable.</summary>
public sealed class AgentClientOptions
{
    /// <summary>The agent's identity (its signer attests the agent's channel keys).</summary>
    public required AgentIdentity Identity { get; init; }

    /// <summary>The authorities whose credentials the agent accepts from peers (and relays).</summary>
    public required TrustAnchors Anchors { get; init; }

    /// <summary>The credential chains the agent presents; replace them with <see cref="AgentClient.UpdateCredentialsAsync"/>.</summary>
    public IReadOnlyList<CredentialChain> Credentials { get; init; } = [];

    /// <summary>The revocation lists the agent honours (fed by its authority subscription); a newer list re-checks every open channel.</summary>
    public RevocationRegistry Revocations { get; init; } = new();

    /// <summary>Who may open a channel to this agent, and whom it accepts when it opens one. Null: nobody (deny by default).</summary>
    public AccessPolicy? Policy { get; init; }

    /// <summary>The relays the agent keeps hops to.</summary>
    public IReadOnlyList<RelayEndpoint> Relays { get; init; } = [];

    /// <summary>Names to register at the relays (each granted by a credential's <c>relay-name</c> attribute).</summary>
    public IReadOnlyList<string> Names { get; init; } = [];

    /// <summary>Whether the agent accepts incoming channels (registers at the relays). Defaults to true.</summary>
    public bool Listen { get; init; } = true;

    /// <summary>First reconnection back-off after a hop is lost; it doubles, jittered, up to <see cref="MaxReconnectBackoff"/>. Defaults to 1 s.</summary>
    public TimeSpan FirstReconnectBackoff { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest reconnection back-off: a relay that is back is found within this long. Defaults to 30 s.</summary>
    public TimeSpan MaxReconnectBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long <see cref="AgentChannel.RequestAsync{TRequest, TResponse}(TRequest, TimeSpan?, CancellationToken)"/> waits for a response unless told otherwise. Defaults to 30 s.</summary>
    public TimeSpan DefaultRequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How typed messages are serialized. Defaults to MessagePack's standard resolvers with
    /// <see cref="MessagePackSecurity.UntrustedData"/>: even an authenticated peer is not trusted to send well-formed objects.
    /// </summary>
    public MessagePackSerializerOptions SerializerOptions { get; init; } = DefaultSerializerOptions;

    /// <summary>MessagePack's standard resolvers with <see cref="MessagePackSecurity.UntrustedData"/>: the default of <see cref="SerializerOptions"/>.</summary>
    public static MessagePackSerializerOptions DefaultSerializerOptions { get; } = MessagePackSerializerOptions.Standard.WithSecurity(MessagePackSecurity.UntrustedData);

    /// <summary>Where the client's meter (<c>SecureChannels.Client</c>) is created; null: a meter of its own.</summary>
    public IMeterFactory? MeterFactory { get; init; }

    /// <summary>
    /// The audit events of the agent's end-to-end channels (not of its hops): opened, denied (with the peer and the
    /// reason code, also for incoming channels the policy refused), rekeyed, credentials updated, closed. Called on the
    /// channel's own task: keep it quick. They name identities and principals, never keys.
    /// </summary>
    public Action<ChannelEvent>? Events { get; init; }

    /// <summary>The clock for every timeout, back-off, rekey and expiry.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Where the client logs (identities and reasons, never keys).</summary>
    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;
}
