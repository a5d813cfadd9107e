using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using SecureChannels.Authority.Issuance;
using SecureChannels.Authority.Publication;
using SecureChannels.Authority.Telemetry;
using SecureChannels.Protocol.Identity;

namespace SecureChannels.Authority.Hosting;

/// <summary>What a running authority tells its host: who it is, where it listens, and its subscribers.</summary>
public sealed class AuthorityServer
{
    private readonly PublicationHub _hub;

    internal AuthorityServer(AuthorityService service, PublicationHub hub, AuthorityMetrics metrics)
    {
        Service = service;
        _hub = hub;
        Metrics = metrics;
    }

    /// <summary>The authority's operations (for in-process callers such as the CLI and tests).</summary>
    public AuthorityService Service { get; }

    /// <summary>The authority's instruments.</summary>
    public AuthorityMetrics Metrics { get; }

    /// <summary>The authority's identifier, which agents pin.</summary>
    public Identifier Identifier => Service.Identity.Identifier;

    /// <summary>The bound channel endpoint (the real port when configured with port 0), once started.</summary>
    public IPEndPoint? EndPoint => Listener?.IPEndPoint;

    /// <summary>The bound HTTP endpoint of /healthz and /metrics, once started; null when disabled.</summary>
    public IPEndPoint? MetricsEndPoint => MetricsListener?.IPEndPoint;

    /// <summary>Subscribers connected now.</summary>
    public int SubscriberCount => _hub.Count;

    internal ListenOptions? Listener { get; set; }

    internal ListenOptions? MetricsListener { get; set; }
}
