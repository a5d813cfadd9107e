using Microsoft.Extensions.DependencyInjection;

namespace SecureChannels.Client.Hosting;

/// <summary>What <see cref="ServiceCollectionExtensions.AddSecureChannelsClient(IServiceCollection, Action{SecureChannelsClientOptions}?)"/> returns, to chain <see cref="ServiceCollectionExtensions.AddChannelHandler{THandler}"/>.</summary>
public interface ISecureChannelsClientBuilder
{
    /// <summary>The services the client was added to.</summary>
    IServiceCollection Services { get; }
}

internal sealed class SecureChannelsClientBuilder(IServiceCollection services) : ISecureChannelsClientBuilder
{
    public IServiceCollection Services { get; } = services;
}
