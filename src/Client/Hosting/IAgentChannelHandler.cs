namespace SecureChannels.Client.Hosting;

/// <summary>
/// Serves one incoming channel, registered with <see cref="ServiceCollectionExtensions.AddChannelHandler{THandler}"/>.
/// Each channel gets its own DI scope and handler instance. When <see cref="HandleAsync"/> returns, the channel is closed
/// gracefully (so what the handler sent arrives; the peer has a few seconds to close its side) and disposed; when it
/// throws, the channel is disposed at once and the peer sees it go away. Keep no reference to the channel past then.
/// </summary>
public interface IAgentChannelHandler
{
    /// <summary>
    /// Serves <paramref name="channel"/>, already authenticated and allowed by the agent's policy
    /// (<see cref="AgentChannel.Peer"/> says who it is). Return when done with it.
    /// </summary>
    /// <param name="channel">The channel a peer opened to this agent.</param>
    /// <param name="cancellationToken">Cancelled when the host stops: return promptly.</param>
    Task HandleAsync(AgentChannel channel, CancellationToken cancellationToken);
}
