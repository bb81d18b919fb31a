/** Free loopback ports for the servers a test starts: the same finder the simulator uses. */
export { freeTcpPort, freeUdpPort } from "../../server/simulate/ports.js";
