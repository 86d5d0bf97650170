// The "WhatsApp" dashboard: a Home Assistant dashboard strategy, built from the entities of
// this integration each time the dashboard opens, so it follows contacts added or removed.
// Offered in Settings > Dashboards > Add dashboard; "Take control" turns it into an ordinary
// dashboard the user edits, which nothing here ever overwrites.
const DOMAIN = "whatsapp_presence";

const ids = (hass, domain, key) =>
  Object.values(hass.entities)
    .filter(
      (entity) =>
        entity.platform === DOMAIN &&
        entity.translation_key === key &&
        entity.entity_id.startsWith(`${domain}.`) &&
        !entity.hidden &&
        entity.entity_id in hass.states,
    )
    .map((entity) => entity.entity_id)
    .sort((a, b) =>
      (hass.states[a].attributes.friendly_name || a).localeCompare(
        hass.states[b].attributes.friendly_name || b,
      ),
    );

class WhatsAppPresenceDashboardStrategy extends HTMLElement {
  static async generate(config, hass) {
    const online = ids(hass, "binary_sensor", "online");
    const onlineToday = ids(hass, "sensor", "online_today");
    const onlineNow = ids(hass, "sensor", "online_now");
    const cards = [];
    if (online.length === 0) {
      cards.push({
        type: "markdown",
        content:
          "No WhatsApp contacts are tracked yet: add them under Settings > Devices & services > WhatsApp Presence.",
      });
    } else {
      cards.push({
        type: "entity-filter",
        entities: online,
        conditions: [{ condition: "state", state: "on" }],
        show_empty: true,
        card: { type: "entities", title: "Online now" },
      });
      if (onlineNow.length) {
        cards.push({ type: "glance", title: "Contacts online", entities: onlineNow });
      }
      cards.push({
        type: "history-graph",
        title: "Today",
        hours_to_show: Math.max(1, Math.ceil((Date.now() - new Date().setHours(0, 0, 0, 0)) / 3600000)),
        entities: online,
      });
      if (onlineToday.length) {
        cards.push({
          type: "statistics-graph",
          title: "Online time per day (last 14 days)",
          entities: onlineToday,
          period: "day",
          days_to_show: 14,
          stat_types: ["change"],
          chart_type: "bar",
        });
      }
    }
    return {
      title: "WhatsApp",
      views: [{ title: "Presence", path: "presence", icon: "mdi:whatsapp", cards }],
    };
  }
}

customElements.define(
  "ll-strategy-dashboard-whatsapp-presence",
  WhatsAppPresenceDashboardStrategy,
);

window.customStrategies = window.customStrategies || [];
if (!window.customStrategies.some((strategy) => strategy.type === "whatsapp-presence")) {
  window.customStrategies.push({
    type: "whatsapp-presence",
    strategyType: "dashboard",
    name: "WhatsApp",
    description: "Who is online now, today's timeline and online time per day of your WhatsApp contacts.",
  });
}
