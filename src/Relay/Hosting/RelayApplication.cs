using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
using SecureChannels.Relay.Hops;
using SecureChannels.Relay.Peering;
using SecureChannels.Relay.Routing;
using SecureChannels.Relay.Telemetry;

namespace SecureChannels.Relay.Hosting;

/// <summary>
/// Builds a relay as a .NET host: Kestrel with a ConnectionHandler on the hop endpoint, /healthz and /metrics on
/// a separate HTTP endpoint, options bound from the "Relay" configuration section and validated at start, peer
/// links as a hosted service, and graceful shutdown that tells every hop why.
/// </summary>
public static class RelayApplication
{
    /// <summary>
    /// Creates the relay's application. <paramref name="configure"/> may add configuration sources or replace
    /// services (a <see cref="TimeProvider"/>, logging) before it is built.
    /// </summary>
    public static WebApplication Build(string[] args, RelayIdentity identity, Action<WebApplicationBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(identity);
        var builder = WebApplication.CreateSlimBuilder(args);
        configure?.Invoke(builder);
        AddRelay(builder.Services, builder.Configuration, identity);
        builder.WebHost.ConfigureKestrel((context, kestrel) =>
        {
            var options = kestrel.ApplicationServices.GetRequiredService<IOptions<RelayOptions>>().Value;
            var server = kestrel.ApplicationServices.GetRequiredService<RelayServer>();
            kestrel.AddServerHeader = false;
            kestrel.Listen(options.GetHopEndPoint(), listen =>
            {
                listen.UseConnectionHandler<HopConnectionHandler>();
                server.HopListener = listen;
            });
            if (!string.IsNullOrEmpty(options.MetricsEndpoint))
            {
                kestrel.Listen(IPEndPoint.Parse(options.MetricsEndpoint), listen => server.MetricsListener = listen);
            }
        });

        var app = builder.Build();
        app.MapGet("/healthz", (CircuitSwitch circuitSwitch) => circuitSwitch.IsShuttingDown ? Results.Text("stopping", statusCode: 503) : Results.Text("ok"));
        app.MapPrometheusScrapingEndpoint("/metrics");

        // ApplicationStopping fires before Kestrel stops: every hop hears GOAWAY(ShuttingDown) while it can.
        var lifetime = app.Services.GetRequiredService<IHostApplicationLifetime>();
        var circuits = app.Services.GetRequiredService<CircuitSwitch>();
        lifetime.ApplicationStopping.Register(() => circuits.BeginShutdown());
        return app;
    }

    private static void AddRelay(IServiceCollection services, Microsoft.Extensions.Configuration.ConfigurationManager configuration, RelayIdentity identity)
    {
        services.AddOptions<RelayOptions>().Bind(configuration.GetSection(RelayOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IValidateOptions<RelayOptions>, RelayOptionsValidator>();
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(identity);
        services.AddSingleton<RelayMetrics>();
        services.AddSingleton<HopChannelFactory>();
        services.AddSingleton<CircuitSwitch>();
        services.AddSingleton(static sp => new RelayServer(sp.GetRequiredService<CircuitSwitch>(), sp.GetRequiredService<HopChannelFactory>()));
        services.AddHostedService<PeerLinkDialer>();
        services.AddSingleton<AuthoritySubscriber>();
        services.AddHostedService(static sp => sp.GetRequiredService<AuthoritySubscriber>());
        services.AddOpenTelemetry().WithMetrics(static metrics => metrics
            .AddMeter(RelayMetrics.MeterName)
            .AddPrometheusExporter(static o => o.ScrapeResponseCacheDurationMilliseconds = 0));
    }
}
